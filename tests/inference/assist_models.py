"""A tiny random-weight model with the ONNX contract of Segment Anything's encoder and prompt decoder, exported with
torch, for testing the plumbing of :class:`visionloop.inference.assist.OnnxPromptModel` (no SAM can be shipped).

The encoder is one strided convolution (random weights) to a ``(1, C, 64, 64)`` embedding. The decoder's masks are
drawn from the prompt so a test can see the coordinates were carried right: discs of radius 8, 16 and 32 pixels of
the 1024 frame round the positive clicks, the inside of the box, minus discs round the negative clicks, united with the
previous mask when ``has_mask_input``, plus a small random function of the embedding; upsampled, cropped to the
resized image and resized to ``orig_im_size`` as SAM's export does.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

SIZE = 1024
LOW = 256
RADII = (8.0, 16.0, 32.0)


class Encoder(nn.Module):
    def __init__(self, channels: int = 8) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, channels, kernel_size=16, stride=16)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.conv(image)


class Decoder(nn.Module):
    def __init__(self, channels: int = 8) -> None:
        super().__init__()
        self.mix = nn.Conv2d(channels, len(RADII), kernel_size=1)
        self.score = nn.Linear(channels, len(RADII))
        centres = (torch.arange(LOW, dtype=torch.float32) + 0.5) * (SIZE / LOW)
        gy, gx = torch.meshgrid(centres, centres, indexing="ij")
        self.register_buffer("grid", torch.stack([gx.reshape(-1), gy.reshape(-1)], 1))  # (G, 2) x, y
        self.register_buffer("radii", torch.tensor(RADII).view(1, -1, 1))

    def forward(self, image_embeddings: torch.Tensor, point_coords: torch.Tensor, point_labels: torch.Tensor,
                mask_input: torch.Tensor, has_mask_input: torch.Tensor, orig_im_size: torch.Tensor):  # noqa: ANN201
        pts = point_coords[0]  # (N, 2)
        labels = point_labels[0]  # (N,)
        dist = torch.cdist(pts, self.grid)  # (N, G)
        far = torch.full_like(dist, 1e6)
        d_pos = torch.where((labels == 1).unsqueeze(1), dist, far).min(0).values  # (G,)
        d_neg = torch.where((labels == 0).unsqueeze(1), dist, far).min(0).values
        is1, is2 = (labels == 2).float().unsqueeze(1), (labels == 3).float().unsqueeze(1)
        has_box = (labels == 2).any().float()
        a = (pts * is1).sum(0)
        b = (pts * is2).sum(0)
        gx, gy = self.grid[:, 0], self.grid[:, 1]
        inside = ((gx >= a[0]) & (gx <= b[0]) & (gy >= a[1]) & (gy <= b[1])).float() * has_box
        r = self.radii  # (1, K, 1)
        positive = torch.maximum(r - d_pos.view(1, 1, -1), (inside.view(1, 1, -1) * 2 - 1) * r)
        negative = torch.relu(r - d_neg.view(1, 1, -1)) * 4
        logits = (positive - negative).view(1, len(RADII), LOW, LOW)
        noise = F.interpolate(self.mix(image_embeddings), size=(LOW, LOW), mode="bilinear", align_corners=False)
        keep = has_mask_input.view(1, 1, 1, 1) * torch.relu(mask_input - logits)  # max(logits, previous) when given
        low = logits + keep + 0.01 * noise
        scores = torch.sigmoid(self.score(image_embeddings.mean((2, 3))))
        masks = F.interpolate(low, size=(SIZE, SIZE), mode="bilinear", align_corners=False)
        size = orig_im_size.to(torch.float32)
        resized = torch.floor(size * (SIZE / size.max()) + 0.5).to(torch.int64)
        masks = masks[..., : resized[0], : resized[1]]
        orig = orig_im_size.to(torch.int64)
        masks = F.interpolate(masks, size=(orig[0], orig[1]), mode="bilinear", align_corners=False)
        return masks, scores, low


def export_sam_like(folder: Path, *, seed: int = 0, channels: int = 8) -> tuple[Path, Path]:
    """Write ``encoder.onnx`` and ``decoder.onnx`` (random weights from ``seed``) into ``folder``; their paths."""
    torch.manual_seed(seed)
    folder.mkdir(parents=True, exist_ok=True)
    encoder, decoder = Encoder(channels).eval(), Decoder(channels).eval()
    enc_path, dec_path = folder / "encoder.onnx", folder / "decoder.onnx"
    with torch.no_grad():
        torch.onnx.export(encoder, (torch.zeros(1, 3, SIZE, SIZE),), str(enc_path), input_names=["image"],
                          output_names=["image_embeddings"], opset_version=17, dynamo=False)
        emb = torch.zeros(1, channels, SIZE // 16, SIZE // 16)
        args = (emb, torch.tensor([[[500.0, 400.0], [0.0, 0.0]]]), torch.tensor([[1.0, -1.0]]),
                torch.zeros(1, 1, LOW, LOW), torch.zeros(1), torch.tensor([700.0, 900.0]))
        torch.onnx.export(decoder, args, str(dec_path), opset_version=17, dynamo=False,
                          input_names=["image_embeddings", "point_coords", "point_labels", "mask_input",
                                       "has_mask_input", "orig_im_size"],
                          output_names=["masks", "iou_predictions", "low_res_masks"],
                          dynamic_axes={"point_coords": {1: "points"}, "point_labels": {1: "points"}})
    return enc_path, dec_path
