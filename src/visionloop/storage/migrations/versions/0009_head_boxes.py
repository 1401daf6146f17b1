"""head_boxes: size and aspect of every box of every head annotation, filled from the head revisions

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 07:25:00.000000
"""

import math

import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

_BATCH = 2000


def _rows(annotation_id: int, payload: dict) -> list[dict]:
    """The rows of one head payload (the same as visionloop.storage.head_boxes.head_box_rows, frozen here)."""
    if not isinstance(payload, dict) or payload.get('type') not in ('boxes', 'instances'):
        return []
    out = []
    for i, (x1, y1, x2, y2) in enumerate(payload.get('xyxy', [])):
        w, h = max(0.0, x2 - x1), max(0.0, y2 - y1)
        out.append({'annotation_id': annotation_id, 'idx': i, 'size': math.sqrt(w * h),
                    'aspect': w / h if h > 0 else math.inf if w > 0 else 1.0})
    return out


def upgrade() -> None:
    table = op.create_table('head_boxes',
    sa.Column('annotation_id', sa.Integer(), nullable=False),
    sa.Column('idx', sa.Integer(), nullable=False),
    sa.Column('size', sa.Float(), nullable=False),
    sa.Column('aspect', sa.Float(), nullable=False),
    sa.ForeignKeyConstraint(['annotation_id'], ['annotations.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('annotation_id', 'idx')
    )
    with op.batch_alter_table('head_boxes', schema=None) as batch_op:
        batch_op.create_index('ix_head_boxes_size', ['size'], unique=False)
        batch_op.create_index('ix_head_boxes_aspect', ['aspect'], unique=False)
    conn = op.get_bind()
    annotations = sa.table('annotations', sa.column('id'), sa.column('head_revision_id'))
    revisions = sa.table('revisions', sa.column('id'), sa.column('payload', sa.JSON()))
    last = 0
    while True:  # keyset pages of head revisions: a large project is never read in full
        page = conn.execute(sa.select(annotations.c.id, revisions.c.payload)
                            .join(revisions, revisions.c.id == annotations.c.head_revision_id)
                            .where(annotations.c.id > last).order_by(annotations.c.id).limit(_BATCH)).all()
        if not page:
            break
        rows = [r for a in page for r in _rows(a.id, a.payload)]
        if rows:
            conn.execute(sa.insert(table), rows)
        last = page[-1].id


def downgrade() -> None:
    op.drop_table('head_boxes')
