-- A warning's chain (CAP 1.2 msgType and references): a plugin updates or
-- cancels a warning it raised with a message of its own, a row here. `root` is
-- the chain's first warning (an Alert is its own root), `position` its place
-- in the chain (0 for the Alert), `refs` the ids of the chain's earlier
-- messages, oldest first, as a JSON array (what its CAP `references` names),
-- `note` a cancel's reason. One message per place in a chain, so two changes
-- to one chain at once cannot both take the same place.
ALTER TABLE warnings ADD COLUMN msg_type TEXT NOT NULL DEFAULT 'Alert';
ALTER TABLE warnings ADD COLUMN root TEXT;
ALTER TABLE warnings ADD COLUMN position BIGINT NOT NULL DEFAULT 0;
ALTER TABLE warnings ADD COLUMN refs TEXT NOT NULL DEFAULT '[]';
ALTER TABLE warnings ADD COLUMN note TEXT NOT NULL DEFAULT '';
UPDATE warnings SET root = id WHERE root IS NULL;
CREATE UNIQUE INDEX warnings_chain ON warnings (root, position);
