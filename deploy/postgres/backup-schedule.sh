#!/bin/sh
# The compose service `pgbackrest`: makes the stanza once the server answers,
# then takes a base backup every BACKUP_EVERY_HOURS (24): a full one on
# FULL_WEEKDAY (7: Sunday, UTC; and whenever none exists), else a differential
# one. The WAL archive (archive_command) gives the RPO; base backups bound how
# much WAL a restore replays (the RTO). A failure exits: compose restarts it.
set -eu
every_s=$(( ${BACKUP_EVERY_HOURS:-24} * 3600 ))
until pg_isready -q -h /var/run/postgresql; do sleep 5; done
pgbackrest --stanza=atalaia stanza-create
while :; do
  type=diff
  [ "$(date -u +%u)" = "${FULL_WEEKDAY:-7}" ] && type=full
  pgbackrest --stanza=atalaia --type="$type" backup
  sleep "$every_s"
done
