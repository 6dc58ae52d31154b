# A Redis Sentinel of the cluster profile (docker-compose.chaos.yml, sentinel1-3): Sentinel
# rewrites its configuration file as it learns, so each start writes a fresh one in /tmp.
# Names, not addresses: every container of the profile names every service in /etc/hosts.
# CHAOS_SENTINEL_PRIMARY: the data node that starts as the primary (each backend has its own).
# quorum 2 of 3; the primary is down after 2 s without an answer; a failover gives up after 10 s.
set -e
cat > /tmp/sentinel.conf <<CONF
port 26379
bind 0.0.0.0
protected-mode no
sentinel resolve-hostnames yes
sentinel announce-hostnames yes
sentinel announce-ip $(hostname)
sentinel monitor chaos ${CHAOS_SENTINEL_PRIMARY:-redis-primary} 6379 2
sentinel down-after-milliseconds chaos 2000
sentinel failover-timeout chaos 10000
sentinel parallel-syncs chaos 1
CONF
exec "${CHAOS_REDIS_SERVER:-redis-server}" /tmp/sentinel.conf --sentinel
