-- A lock belongs to one publication (its owner, a random id) and holds for a lease that its
-- holder renews: a holder that died frees the lock when the lease runs out.
ALTER TABLE publication_locks ADD COLUMN owner TEXT NOT NULL DEFAULT '';
ALTER TABLE publication_locks ADD COLUMN lease_until INTEGER NOT NULL DEFAULT 0;
