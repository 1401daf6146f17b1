"""review states, deleted images, indexes for the filtered image list

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 00:10:00.000000

- ``review_events``: every change of an image's review state (never updated; the latest row is the current state)
- ``images.deleted_at``: an image deleted from the project while a dataset version still holds it
- indexes that keep the filtered image list fast at 100,000 images: head revision (annotator filter), revision
  author, a version's items by split
"""

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('review_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('image_id', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('author', sa.String(length=128), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['image_id'], ['images.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('review_events', schema=None) as batch_op:
        batch_op.create_index('ix_review_events_image', ['image_id', 'id'], unique=False)
        batch_op.create_index('ix_review_events_state', ['state'], unique=False)
    with op.batch_alter_table('images', schema=None) as batch_op:
        batch_op.add_column(sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f('ix_images_deleted_at'), ['deleted_at'], unique=False)
    with op.batch_alter_table('annotations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_annotations_head_revision_id'), ['head_revision_id'], unique=False)
    with op.batch_alter_table('revisions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_revisions_author'), ['author'], unique=False)
    with op.batch_alter_table('version_items', schema=None) as batch_op:
        batch_op.create_index('ix_version_items_split', ['version_id', 'split', 'image_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('version_items', schema=None) as batch_op:
        batch_op.drop_index('ix_version_items_split')
    with op.batch_alter_table('revisions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_revisions_author'))
    with op.batch_alter_table('annotations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_annotations_head_revision_id'))
    with op.batch_alter_table('images', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_images_deleted_at'))
        batch_op.drop_column('deleted_at')
    with op.batch_alter_table('review_events', schema=None) as batch_op:
        batch_op.drop_index('ix_review_events_state')
        batch_op.drop_index('ix_review_events_image')
    op.drop_table('review_events')
