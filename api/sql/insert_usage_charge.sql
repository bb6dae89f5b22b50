-- A usage charge's description and metadata beside its Usage transfer (the ORM's create() compiled a
-- statement per charge on the API's hottest path). Its id was reserved by the idempotency claim, and it is
-- written in the statement that stores the response (api/idempotency.py, `Write`). The metadata arrives as
-- JSON text.
INSERT INTO billing_usagecharge
    (id, org_id, membership_id, transfer_id, api_key_id, amount, description, metadata, created_at)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s)
