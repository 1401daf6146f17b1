"""work assignment and review: batches, assignments and their log, answers, gold annotations, consensus merges;
review events with issue tags and a comment drawn on the image

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 04:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('work_batches',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('mode', sa.String(length=16), nullable=False),
    sa.Column('k', sa.Integer(), nullable=False),
    sa.Column('honeypot_rate', sa.Float(), nullable=False),
    sa.Column('agreement_threshold', sa.Float(), nullable=False),
    sa.Column('seed', sa.Integer(), nullable=False),
    sa.Column('params', sa.JSON(), nullable=False),
    sa.Column('created_by', sa.String(length=128), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )
    op.create_table('work_assignments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('batch_id', sa.Integer(), nullable=False),
    sa.Column('image_id', sa.Integer(), nullable=False),
    sa.Column('annotator', sa.String(length=128), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['batch_id'], ['work_batches.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['image_id'], ['images.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('batch_id', 'image_id', 'annotator')
    )
    with op.batch_alter_table('work_assignments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_work_assignments_image_id'), ['image_id'], unique=False)
        batch_op.create_index('ix_work_assignments_queue', ['annotator', 'state', 'position'], unique=False)
    op.create_table('work_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('assignment_id', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('author', sa.String(length=128), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['assignment_id'], ['work_assignments.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('work_events', schema=None) as batch_op:
        batch_op.create_index('ix_work_events_assignment', ['assignment_id', 'id'], unique=False)
    op.create_table('work_answers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('assignment_id', sa.Integer(), nullable=False),
    sa.Column('image_id', sa.Integer(), nullable=False),
    sa.Column('annotator', sa.String(length=128), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('score', sa.JSON(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['assignment_id'], ['work_assignments.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['image_id'], ['images.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('work_answers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_work_answers_annotator'), ['annotator'], unique=False)
        batch_op.create_index('ix_work_answers_assignment', ['assignment_id', 'id'], unique=False)
    op.create_table('gold_annotations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('image_id', sa.Integer(), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=True),
    sa.Column('author', sa.String(length=128), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['image_id'], ['images.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('gold_annotations', schema=None) as batch_op:
        batch_op.create_index('ix_gold_annotations_image', ['image_id', 'id'], unique=False)
    op.create_table('work_merges',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('batch_id', sa.Integer(), nullable=False),
    sa.Column('image_id', sa.Integer(), nullable=False),
    sa.Column('agreement', sa.Float(), nullable=False),
    sa.Column('revision', sa.Integer(), nullable=True),
    sa.Column('detail', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['batch_id'], ['work_batches.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['image_id'], ['images.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('work_merges', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_work_merges_image_id'), ['image_id'], unique=False)
    with op.batch_alter_table('review_events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('tags', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('comment', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('review_events', schema=None) as batch_op:
        batch_op.drop_column('comment')
        batch_op.drop_column('tags')
    with op.batch_alter_table('work_merges', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_work_merges_image_id'))
    op.drop_table('work_merges')
    with op.batch_alter_table('gold_annotations', schema=None) as batch_op:
        batch_op.drop_index('ix_gold_annotations_image')
    op.drop_table('gold_annotations')
    with op.batch_alter_table('work_answers', schema=None) as batch_op:
        batch_op.drop_index('ix_work_answers_assignment')
        batch_op.drop_index(batch_op.f('ix_work_answers_annotator'))
    op.drop_table('work_answers')
    with op.batch_alter_table('work_events', schema=None) as batch_op:
        batch_op.drop_index('ix_work_events_assignment')
    op.drop_table('work_events')
    with op.batch_alter_table('work_assignments', schema=None) as batch_op:
        batch_op.drop_index('ix_work_assignments_queue')
        batch_op.drop_index(batch_op.f('ix_work_assignments_image_id'))
    op.drop_table('work_assignments')
    op.drop_table('work_batches')
