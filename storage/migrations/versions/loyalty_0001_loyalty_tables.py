"""loyalty: settings, levels, accounts, points ledger, coupon templates and coupons,
flash prices, full-reduction tiers, order discounts, member merges, bind codes

Revision ID: loyalty_0001
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa

revision = "loyalty_0001"
down_revision = "0001"
branch_labels = ("loyalty",)
depends_on = None


def upgrade() -> None:
    op.create_table('loyalty_coupon_templates',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('tenant_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('name', sa.String(length=40), nullable=False),
    sa.Column('kind', sa.String(length=12), nullable=False),
    sa.Column('threshold_fen', sa.Integer(), nullable=False),
    sa.Column('off_fen', sa.Integer(), nullable=False),
    sa.Column('off_bp', sa.Integer(), nullable=False),
    sa.Column('cap_fen', sa.Integer(), nullable=False),
    sa.Column('scope', sa.String(length=12), nullable=False),
    sa.Column('scope_ids', sa.JSON(), nullable=False),
    sa.Column('valid_from', sa.DateTime(timezone=True), nullable=True),
    sa.Column('valid_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('valid_days', sa.Integer(), nullable=False),
    sa.Column('per_member', sa.Integer(), nullable=False),
    sa.Column('total_qty', sa.Integer(), nullable=False),
    sa.Column('claimed_qty', sa.Integer(), nullable=False),
    sa.Column('claimable', sa.Boolean(), nullable=False),
    sa.Column('issue_on', sa.String(length=32), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_loyalty_coupon_templates_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_loyalty_coupon_templates'))
    )
    op.create_index(op.f('ix_loyalty_coupon_templates_tenant_id'), 'loyalty_coupon_templates', ['tenant_id'], unique=False)
    op.create_table('loyalty_full_reductions',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('tenant_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('threshold_fen', sa.Integer(), nullable=False),
    sa.Column('off_fen', sa.Integer(), nullable=False),
    sa.Column('starts_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ends_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_loyalty_full_reductions_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_loyalty_full_reductions'))
    )
    op.create_index(op.f('ix_loyalty_full_reductions_tenant_id'), 'loyalty_full_reductions', ['tenant_id'], unique=False)
    op.create_table('loyalty_levels',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('tenant_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('name', sa.String(length=20), nullable=False),
    sa.Column('min_growth', sa.Integer(), nullable=False),
    sa.Column('discount_bp', sa.Integer(), nullable=False),
    sa.Column('benefits', sa.String(length=200), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_loyalty_levels_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_loyalty_levels'))
    )
    op.create_index(op.f('ix_loyalty_levels_tenant_id'), 'loyalty_levels', ['tenant_id'], unique=False)
    op.create_table('loyalty_settings',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('tenant_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('earn_points_per_yuan', sa.Integer(), nullable=False),
    sa.Column('growth_per_yuan', sa.Integer(), nullable=False),
    sa.Column('redeem_points_per_yuan', sa.Integer(), nullable=False),
    sa.Column('redeem_cap_bp', sa.Integer(), nullable=False),
    sa.Column('points_valid_days', sa.Integer(), nullable=False),
    sa.Column('signin_points', sa.Integer(), nullable=False),
    sa.Column('streak_days', sa.Integer(), nullable=False),
    sa.Column('streak_bonus', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_loyalty_settings_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_loyalty_settings')),
    sa.UniqueConstraint('tenant_id', name=op.f('uq_loyalty_settings_tenant_id'))
    )
    op.create_table('loyalty_accounts',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('tenant_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('member_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('growth', sa.Integer(), nullable=False),
    sa.Column('level', sa.String(length=20), nullable=False),
    sa.Column('points', sa.Integer(), nullable=False),
    sa.Column('last_signin', sa.String(length=10), nullable=False),
    sa.Column('streak', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_loyalty_accounts_member_id_members')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_loyalty_accounts_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_loyalty_accounts')),
    sa.UniqueConstraint('tenant_id', 'member_id', name=op.f('uq_loyalty_accounts_tenant_id_member_id'))
    )
    op.create_index(op.f('ix_loyalty_accounts_tenant_id'), 'loyalty_accounts', ['tenant_id'], unique=False)
    op.create_table('loyalty_bind_codes',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('tenant_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('code', sa.String(length=12), nullable=False),
    sa.Column('member_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_loyalty_bind_codes_member_id_members')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_loyalty_bind_codes_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_loyalty_bind_codes')),
    sa.UniqueConstraint('tenant_id', 'code', name=op.f('uq_loyalty_bind_codes_tenant_id_code'))
    )
    op.create_index(op.f('ix_loyalty_bind_codes_tenant_id'), 'loyalty_bind_codes', ['tenant_id'], unique=False)
    op.create_table('loyalty_member_merges',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('tenant_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('from_member_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('into_member_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('via', sa.String(length=20), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['from_member_id'], ['members.id'], name=op.f('fk_loyalty_member_merges_from_member_id_members')),
    sa.ForeignKeyConstraint(['into_member_id'], ['members.id'], name=op.f('fk_loyalty_member_merges_into_member_id_members')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_loyalty_member_merges_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_loyalty_member_merges')),
    sa.UniqueConstraint('tenant_id', 'from_member_id', name=op.f('uq_loyalty_member_merges_tenant_id_from_member_id'))
    )
    op.create_index(op.f('ix_loyalty_member_merges_tenant_id'), 'loyalty_member_merges', ['tenant_id'], unique=False)
    op.create_table('loyalty_points',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('tenant_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('member_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('delta', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=12), nullable=False),
    sa.Column('ref', sa.String(length=64), nullable=False),
    sa.Column('note', sa.String(length=80), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('lot_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_loyalty_points_member_id_members')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_loyalty_points_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_loyalty_points')),
    sa.UniqueConstraint('tenant_id', 'ref', name=op.f('uq_loyalty_points_tenant_id_ref'))
    )
    op.create_index('ix_loyalty_points_expires', 'loyalty_points', ['expires_at'], unique=False)
    op.create_index(op.f('ix_loyalty_points_member_id'), 'loyalty_points', ['member_id'], unique=False)
    op.create_index(op.f('ix_loyalty_points_tenant_id'), 'loyalty_points', ['tenant_id'], unique=False)
    op.create_table('loyalty_coupons',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('tenant_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('template_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('member_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('source', sa.String(length=40), nullable=False),
    sa.Column('order_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('valid_from', sa.DateTime(timezone=True), nullable=False),
    sa.Column('valid_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('claimed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_loyalty_coupons_member_id_members')),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_loyalty_coupons_order_id_orders')),
    sa.ForeignKeyConstraint(['template_id'], ['loyalty_coupon_templates.id'], name=op.f('fk_loyalty_coupons_template_id_loyalty_coupon_templates')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_loyalty_coupons_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_loyalty_coupons')),
    sa.UniqueConstraint('tenant_id', 'template_id', 'member_id', 'seq', name=op.f('uq_loyalty_coupons_tenant_id_template_id_member_id_seq'))
    )
    op.create_index(op.f('ix_loyalty_coupons_member_id'), 'loyalty_coupons', ['member_id'], unique=False)
    op.create_index(op.f('ix_loyalty_coupons_tenant_id'), 'loyalty_coupons', ['tenant_id'], unique=False)
    op.create_table('loyalty_order_state',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('tenant_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('order_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('member_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('paid_fen', sa.Integer(), nullable=False),
    sa.Column('earned_points', sa.Integer(), nullable=False),
    sa.Column('earned_growth', sa.Integer(), nullable=False),
    sa.Column('refunded_fen', sa.Integer(), nullable=False),
    sa.Column('returned_points', sa.Integer(), nullable=False),
    sa.Column('clawed_points', sa.Integer(), nullable=False),
    sa.Column('clawed_growth', sa.Integer(), nullable=False),
    sa.Column('refs', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_loyalty_order_state_member_id_members')),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_loyalty_order_state_order_id_orders')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_loyalty_order_state_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_loyalty_order_state')),
    sa.UniqueConstraint('order_id', name=op.f('uq_loyalty_order_state_order_id'))
    )
    op.create_index(op.f('ix_loyalty_order_state_tenant_id'), 'loyalty_order_state', ['tenant_id'], unique=False)
    op.create_table('loyalty_flash_prices',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('tenant_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('sku_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('price_fen', sa.Integer(), nullable=False),
    sa.Column('starts_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ends_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['sku_id'], ['skus.id'], name=op.f('fk_loyalty_flash_prices_sku_id_skus')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_loyalty_flash_prices_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_loyalty_flash_prices'))
    )
    op.create_index(op.f('ix_loyalty_flash_prices_sku_id'), 'loyalty_flash_prices', ['sku_id'], unique=False)
    op.create_index(op.f('ix_loyalty_flash_prices_tenant_id'), 'loyalty_flash_prices', ['tenant_id'], unique=False)
    op.create_table('order_discounts',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('tenant_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('order_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('member_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('coupon_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('points_used', sa.Integer(), nullable=False),
    sa.Column('points_fen', sa.Integer(), nullable=False),
    sa.Column('discount_fen', sa.Integer(), nullable=False),
    sa.Column('breakdown', sa.JSON(), nullable=False),
    sa.Column('line_refunds', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['coupon_id'], ['loyalty_coupons.id'], name=op.f('fk_order_discounts_coupon_id_loyalty_coupons')),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_order_discounts_member_id_members')),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_order_discounts_order_id_orders')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_order_discounts_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_order_discounts')),
    sa.UniqueConstraint('order_id', name=op.f('uq_order_discounts_order_id'))
    )
    op.create_index(op.f('ix_order_discounts_member_id'), 'order_discounts', ['member_id'], unique=False)
    op.create_index(op.f('ix_order_discounts_tenant_id'), 'order_discounts', ['tenant_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_order_discounts_tenant_id'), table_name='order_discounts')
    op.drop_index(op.f('ix_order_discounts_member_id'), table_name='order_discounts')
    op.drop_table('order_discounts')
    op.drop_index(op.f('ix_loyalty_flash_prices_tenant_id'), table_name='loyalty_flash_prices')
    op.drop_index(op.f('ix_loyalty_flash_prices_sku_id'), table_name='loyalty_flash_prices')
    op.drop_table('loyalty_flash_prices')
    op.drop_index(op.f('ix_loyalty_order_state_tenant_id'), table_name='loyalty_order_state')
    op.drop_table('loyalty_order_state')
    op.drop_index(op.f('ix_loyalty_coupons_tenant_id'), table_name='loyalty_coupons')
    op.drop_index(op.f('ix_loyalty_coupons_member_id'), table_name='loyalty_coupons')
    op.drop_table('loyalty_coupons')
    op.drop_index(op.f('ix_loyalty_points_tenant_id'), table_name='loyalty_points')
    op.drop_index(op.f('ix_loyalty_points_member_id'), table_name='loyalty_points')
    op.drop_index('ix_loyalty_points_expires', table_name='loyalty_points')
    op.drop_table('loyalty_points')
    op.drop_index(op.f('ix_loyalty_member_merges_tenant_id'), table_name='loyalty_member_merges')
    op.drop_table('loyalty_member_merges')
    op.drop_index(op.f('ix_loyalty_bind_codes_tenant_id'), table_name='loyalty_bind_codes')
    op.drop_table('loyalty_bind_codes')
    op.drop_index(op.f('ix_loyalty_accounts_tenant_id'), table_name='loyalty_accounts')
    op.drop_table('loyalty_accounts')
    op.drop_table('loyalty_settings')
    op.drop_index(op.f('ix_loyalty_levels_tenant_id'), table_name='loyalty_levels')
    op.drop_table('loyalty_levels')
    op.drop_index(op.f('ix_loyalty_full_reductions_tenant_id'), table_name='loyalty_full_reductions')
    op.drop_table('loyalty_full_reductions')
    op.drop_index(op.f('ix_loyalty_coupon_templates_tenant_id'), table_name='loyalty_coupon_templates')
    op.drop_table('loyalty_coupon_templates')
