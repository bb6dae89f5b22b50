-- The aggregates of one credit type inside the export's per-transfer LATERAL (sql/export.sql): whether
-- the transfer moved it, its org wallet pocket's balance after and its last org wallet entry (the type's balance
-- after, when the org wallet holds several pockets of it: sql/export_type_balance.sql), and how many legs sent
-- and received it.
-- reporting/export.py fills the placeholders in braces: the credit type id and org wallet id as
-- literals, and the column names (suffixed with the credit type id).
bool_or(e.credit_type_id = {credit_type}) AS {has},
MAX(e.balance_after) FILTER (WHERE e.wallet_id = {org_wallet} AND e.credit_type_id = {credit_type}) AS {balance},
MAX(e.id) FILTER (WHERE e.wallet_id = {org_wallet} AND e.credit_type_id = {credit_type}) AS {entry},
COUNT(*) FILTER (WHERE e.amount < 0 AND e.credit_type_id = {credit_type}) AS {legs_from},
COUNT(*) FILTER (WHERE e.amount > 0 AND e.credit_type_id = {credit_type}) AS {legs_to}
