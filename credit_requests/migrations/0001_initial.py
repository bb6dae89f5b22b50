"""State only: the model moved here from the `billing` app; its table, constraints and indexes already exist under their old names."""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('billing', '0004_purchases_stripe'),
        ('orgs', '0002_members_invitations_seats'),
        ('wallets', '0005_pocket_funded_lookup_index'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='CreditRequest',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('amount', models.BigIntegerField()),
                        ('reason', models.CharField(max_length=500)),
                        ('status', models.CharField(choices=[('pending', 'Pending'), ('approved', 'Approved'), ('rejected', 'Rejected'), ('cancelled', 'Cancelled')], default='pending', max_length=16)),
                        ('client_key', models.UUIDField(blank=True, help_text='Minted with the form; a double submit is a replay.', null=True)),
                        ('granted_amount', models.BigIntegerField(blank=True, null=True)),
                        ('decided_at', models.DateTimeField(blank=True, null=True)),
                        ('decision_reason', models.CharField(blank=True, max_length=500)),
                        ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('credit_type', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='wallets.credittype')),
                        ('decided_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='decided_credit_requests', to=settings.AUTH_USER_MODEL)),
                        ('membership', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='credit_requests', to='orgs.membership')),
                        ('org', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='credit_requests', to='orgs.organization')),
                        ('requester', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='credit_requests', to=settings.AUTH_USER_MODEL)),
                        ('transfer', models.OneToOneField(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='credit_request', to='wallets.transfer')),
                    ],
                    options={
                        'db_table': 'billing_creditrequest',
                        'indexes': [models.Index(condition=models.Q(('status', 'pending')), fields=['org', 'created_at', 'id'], name='billing_creq_pending_oldest'), models.Index(models.F('org'), models.OrderBy(models.F('decided_at'), descending=True), name='billing_creq_decided'), models.Index(models.F('membership'), models.OrderBy(models.F('created_at'), descending=True), name='billing_creq_by_member')],
                        'constraints': [models.CheckConstraint(condition=models.Q(('amount__gt', 0)), name='billing_creditrequest_amount_positive'), models.CheckConstraint(condition=models.Q(('granted_amount__isnull', True), models.Q(('granted_amount__gt', 0), ('granted_amount__lte', models.F('amount'))), _connector='OR'), name='billing_creditrequest_granted_within_asked'), models.CheckConstraint(condition=models.Q(models.Q(('granted_amount__isnull', False), ('status', 'approved'), ('transfer__isnull', False)), models.Q(models.Q(('status', 'approved'), _negated=True), ('granted_amount__isnull', True), ('transfer__isnull', True)), _connector='OR'), name='billing_creditrequest_approved_has_transfer'), models.CheckConstraint(condition=models.Q(models.Q(('decided_at__isnull', True), ('status', 'pending')), models.Q(models.Q(('status', 'pending'), _negated=True), ('decided_at__isnull', False)), _connector='OR'), name='billing_creditrequest_decided_at'), models.UniqueConstraint(condition=models.Q(('client_key__isnull', False)), fields=('membership', 'client_key'), name='billing_creditrequest_client_key')],
                    },
                ),
            ],
        ),
    ]
