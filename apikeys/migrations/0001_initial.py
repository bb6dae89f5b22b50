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
                    name='ApiKey',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('name', models.CharField(max_length=80)),
                        ('scope', models.CharField(choices=[('read', 'Read'), ('charge', 'Charge usage'), ('transfer', 'Transfer')], default='read', max_length=16)),
                        ('lookup', models.CharField(editable=False, help_text='Public part of the token.', max_length=12, unique=True)),
                        ('secret_hash', models.CharField(editable=False, max_length=64)),
                        ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('last_used_at', models.DateTimeField(blank=True, null=True)),
                        ('revoked_at', models.DateTimeField(blank=True, null=True)),
                        ('request_key', models.CharField(blank=True, editable=False, max_length=64, null=True)),
                        ('created_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                        ('org', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='api_keys', to='orgs.organization')),
                        ('revoked_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                    ],
                    options={
                        'verbose_name': 'API key',
                        'db_table': 'billing_apikey',
                    },
                ),
                migrations.CreateModel(
                    name='IdempotencyRecord',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('key', models.CharField(max_length=100)),
                        ('method', models.CharField(max_length=8)),
                        ('path', models.CharField(max_length=200)),
                        ('request_hash', models.CharField(max_length=64)),
                        ('status_code', models.PositiveSmallIntegerField(null=True)),
                        ('response_body', models.TextField(blank=True, help_text='The exact JSON bytes first sent back.')),
                        ('created_at', models.DateTimeField(db_index=True, default=django.utils.timezone.now)),
                        ('api_key', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='apikeys.apikey')),
                        ('org', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='orgs.organization')),
                    ],
                    options={
                        'db_table': 'billing_idempotencyrecord',
                    },
                ),
                migrations.CreateModel(
                    name='UsageCharge',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('amount', models.BigIntegerField()),
                        ('description', models.CharField(blank=True, max_length=500)),
                        ('metadata', models.JSONField(blank=True, default=dict)),
                        ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('api_key', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='apikeys.apikey')),
                        ('membership', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='usage_charges', to='orgs.membership')),
                        ('org', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='orgs.organization')),
                        ('transfer', models.OneToOneField(on_delete=django.db.models.deletion.PROTECT, related_name='usage_charge', to='wallets.transfer')),
                    ],
                    options={
                        'db_table': 'billing_usagecharge',
                    },
                ),
                migrations.AddIndex(
                    model_name='apikey',
                    index=models.Index(models.F('org'), models.OrderBy(models.F('created_at'), descending=True), name='billing_apikey_org_recent'),
                ),
                migrations.AddConstraint(
                    model_name='apikey',
                    constraint=models.UniqueConstraint(condition=models.Q(('request_key__isnull', False)), fields=('org', 'request_key'), name='billing_apikey_one_per_form'),
                ),
                migrations.AddConstraint(
                    model_name='idempotencyrecord',
                    constraint=models.UniqueConstraint(fields=('org', 'key'), name='billing_idempotency_one_per_org'),
                ),
                migrations.AddIndex(
                    model_name='usagecharge',
                    index=models.Index(fields=['membership', 'created_at'], name='billing_usage_member_recent'),
                ),
                migrations.AddConstraint(
                    model_name='usagecharge',
                    constraint=models.CheckConstraint(condition=models.Q(('amount__gt', 0)), name='billing_usagecharge_amount_positive'),
                ),
            ],
        ),
    ]
