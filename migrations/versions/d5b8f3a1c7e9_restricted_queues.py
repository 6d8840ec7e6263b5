"""restricted queues

Revision ID: d5b8f3a1c7e9
Revises: f6b30f4cf85e
Create Date: 2026-12-02 09:12:40.518304

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'd5b8f3a1c7e9'
down_revision = 'f6b30f4cf85e'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('queues', schema=None) as batch_op:
        batch_op.add_column(sa.Column('restricted', sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade():
    with op.batch_alter_table('queues', schema=None) as batch_op:
        batch_op.drop_column('restricted')
