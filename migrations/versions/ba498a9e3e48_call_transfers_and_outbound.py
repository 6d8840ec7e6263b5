"""call transfers and outbound calls: consult state, single-offer preference, hand-off wrap-up

Revision ID: ba498a9e3e48
Revises: 3373fe103e25
Create Date: 2026-11-27 10:00:00.000000

"""
from alembic import op
import sqlalchemy as sa
import contact_center.db_types


# revision identifiers, used by Alembic.
revision = 'ba498a9e3e48'
down_revision = '3373fe103e25'
branch_labels = None
depends_on = None


def upgrade():
    # Batch mode: SQLite cannot add foreign keys with ALTER TABLE, so it copies the table.
    with op.batch_alter_table('interactions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('consult_agent_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('consult_call_sid', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column(
            'preferred_single_offer', sa.Boolean(), nullable=False, server_default=sa.false()
        ))
        batch_op.add_column(sa.Column('handoff_agent_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column(
            'handoff_wrapup_until', contact_center.db_types.UTCDateTime(), nullable=True
        ))
        batch_op.create_foreign_key(
            'fk_interactions_consult_agent_id_users', 'users', ['consult_agent_id'], ['id'],
            ondelete='SET NULL',
        )
        batch_op.create_foreign_key(
            'fk_interactions_handoff_agent_id_users', 'users', ['handoff_agent_id'], ['id'],
            ondelete='SET NULL',
        )


def downgrade():
    with op.batch_alter_table('interactions', schema=None) as batch_op:
        batch_op.drop_constraint('fk_interactions_handoff_agent_id_users', type_='foreignkey')
        batch_op.drop_constraint('fk_interactions_consult_agent_id_users', type_='foreignkey')
        batch_op.drop_column('handoff_wrapup_until')
        batch_op.drop_column('handoff_agent_id')
        batch_op.drop_column('preferred_single_offer')
        batch_op.drop_column('consult_call_sid')
        batch_op.drop_column('consult_agent_id')
