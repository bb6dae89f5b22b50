DROP TRIGGER IF EXISTS wallets_entry_balanced ON wallets_entry;
DROP FUNCTION IF EXISTS wallets_entry_check_balanced();
