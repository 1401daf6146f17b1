"""Response bodies of the similarity routes: images like an image, duplicate groups, stored embeddings."""

from __future__ import annotations

from pydantic import BaseModel, Field

__all__ = ["BACKBONE_PATTERN", "DuplicateGroupPublic", "DuplicatesPublic", "EmbedRequest", "EmbeddingSetPublic",
           "ImageRefPublic", "SimilarHitPublic", "SimilarPublic"]

BACKBONE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$|^run:[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"


class ImageRefPublic(BaseModel):
    id: int
    name: str


class SimilarHitPublic(ImageRefPublic):
    score: float = Field(description="Cosine similarity of the two images' embeddings (1 = the same).")


class SimilarPublic(BaseModel):
    image: ImageRefPublic
    backbone: str = Field(description="The embeddings searched (a model name, or run-<id>).")
    method: str = Field(description="`exact` (numpy, small projects) or `ivf` / `hnsw` (FAISS, large ones).")
    results: list[SimilarHitPublic] = Field(description="Most similar first; the image itself left out.")


class DuplicateGroupPublic(BaseModel):
    ids: list[int]
    size: int
    min_score: float = Field(description="Lowest cosine of the pairs that joined the group (1 for exact).")
    max_score: float
    images: list[ImageRefPublic]


class DuplicatesPublic(BaseModel):
    backbone: str
    threshold: float = Field(description="Cosine from which two images were candidates.")
    layout_threshold: float = Field(description="Layout agreement the candidates also needed (0: not checked).")
    exact: list[DuplicateGroupPublic] = Field(description="Images with the same bytes (sha256).")
    near: list[DuplicateGroupPublic] = Field(description="Near-duplicate groups, largest first.")


class EmbeddingSetPublic(BaseModel):
    backbone: str
    kind: str = Field(description="`images` or `crops` (boxes of detection annotations).")
    count: int
    dim: int


class EmbedRequest(BaseModel):
    backbone: str | None = Field(default=None, pattern=BACKBONE_PATTERN,
                                 description="A classifier name or run:<run-id> (default tf_efficientnet_lite0).")
