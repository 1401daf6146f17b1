"""label-error candidates: finder runs, ranked candidates with their state, and the log of state changes

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 04:00:00.000000

- ``label_issue_runs``: one run of the label-error finder (who, when, version, model, method, parameters)
- ``label_issues``: its ranked candidates (image, box, kind, given and suggested class, score) and current state
- ``label_issue_events``: every state change of a candidate (never updated)
"""

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('label_issue_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=128), nullable=False),
    sa.Column('version', sa.String(length=128), nullable=True),
    sa.Column('source', sa.String(length=256), nullable=True),
    sa.Column('method', sa.String(length=64), nullable=False),
    sa.Column('params', sa.JSON(), nullable=False),
    sa.Column('summary', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('label_issues',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('image_id', sa.Integer(), nullable=False),
    sa.Column('box_index', sa.Integer(), nullable=True),
    sa.Column('revision_id', sa.Integer(), nullable=True),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('given_class_id', sa.Integer(), nullable=True),
    sa.Column('suggested_class_id', sa.Integer(), nullable=True),
    sa.Column('box', sa.JSON(), nullable=True),
    sa.Column('score', sa.Float(), nullable=False),
    sa.Column('rank', sa.Integer(), nullable=False),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('state_by', sa.String(length=128), nullable=True),
    sa.Column('state_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['image_id'], ['images.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['run_id'], ['label_issue_runs.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('label_issues', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_label_issues_image_id'), ['image_id'], unique=False)
        batch_op.create_index('ix_label_issues_run', ['run_id', 'state', 'rank'], unique=False)
    op.create_table('label_issue_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('issue_id', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('author', sa.String(length=128), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['issue_id'], ['label_issues.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('label_issue_events', schema=None) as batch_op:
        batch_op.create_index('ix_label_issue_events_issue', ['issue_id', 'id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('label_issue_events', schema=None) as batch_op:
        batch_op.drop_index('ix_label_issue_events_issue')
    op.drop_table('label_issue_events')
    with op.batch_alter_table('label_issues', schema=None) as batch_op:
        batch_op.drop_index('ix_label_issues_run')
        batch_op.drop_index(batch_op.f('ix_label_issues_image_id'))
    op.drop_table('label_issues')
    op.drop_table('label_issue_runs')
