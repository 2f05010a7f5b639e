"""The follow-up store's layout in Redis and the scripts that change it atomically.

Every key step is split into ``shards`` partitions by the instance id; each partition's keys share
one hash tag (``{journey:step:n}``), so each script touches one Redis Cluster slot and the
partitions spread over the cluster's nodes (``connect`` takes ``redis+cluster://host:port`` for a
cluster: any node, the client discovers the rest). Per partition:

- ``due`` (sorted set): instance id → the time its follow-up is due (a claimed one: the time its
  lease ends, so an instance whose worker died is claimed again);
- ``data`` (hash): instance id → ``since|channel|segment|customer_ref`` (what it carries);
- ``prog`` (sorted set): instance id → when it last progressed past the key step, kept for
  ``PROGRESS_HORIZON`` seconds so a registration written late (another process's queue) does not
  resurrect an instance that already moved on;
- ``tries`` (hash): failed attempts of instances being retried;
- ``dead`` (sorted set) and ``deadinfo`` (hash): given-up follow-ups, time → why, for the listing.

Instance ids are cxmetrics' opaque random journey ids; they never leave the store (a delivery's
idempotency key is a digest of the id, the step and the stall time).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from ..spec.model import Spec
from ..spec.names import NONE

PREFIX = "cxfu"
SHARDS = 16
PROGRESS_HORIZON = 300.0

# KEYS: due, data, prog. ARGV[1]: horizon cutoff; ARGV[2]: one write per line, either
# "r <id> <due> <since>|<channel>|<segment>|<customer_ref>" (register) or "c <id> <time>"
# (clear). One argument per batch keeps the client's encoding cost per write to one string format.
APPLY = """
local due, data, prog = KEYS[1], KEYS[2], KEYS[3]
for line in string.gmatch(ARGV[2], '[^\\n]+') do
  local op, id, at, payload = string.match(line, '^(%a) (%S+) (%S+) ?(.*)$')
  if op == 'r' then
    local since = tonumber(string.match(payload, '^([^|]+)'))
    local moved = redis.call('ZSCORE', prog, id)
    if (not moved) or tonumber(moved) < since then
      redis.call('ZADD', due, at, id)
      redis.call('HSET', data, id, payload)
    end
  elseif op == 'c' then
    redis.call('ZREM', due, id)
    redis.call('HDEL', data, id)
    local moved = redis.call('ZSCORE', prog, id)
    if (not moved) or tonumber(moved) < tonumber(at) then
      redis.call('ZADD', prog, at, id)
    end
  end
end
redis.call('ZREMRANGEBYSCORE', prog, '-inf', ARGV[1])
return 1
"""

# KEYS: due, data. ARGV: now, lease, limit. Returns [id, due score, payload or false, ...].
CLAIM = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', 0,
                       tonumber(ARGV[3]))
local out = {}
local lease_end = tonumber(ARGV[1]) + tonumber(ARGV[2])
for i = 1, #ids, 2 do
  redis.call("ZADD", KEYS[1], lease_end, ids[i])
  out[#out + 1] = ids[i]
  out[#out + 1] = ids[i + 1]
  out[#out + 1] = redis.call('HGET', KEYS[2], ids[i])
end
return out
"""

# KEYS: due, data, tries. ARGV: id, payload, id, payload, ... Removes each delivered instance
# unless it was registered anew meanwhile (its payload changed). Returns how many were removed.
ACK = """
local n = 0
for i = 1, #ARGV, 2 do
  local now = redis.call('HGET', KEYS[2], ARGV[i])
  if (not now) or now == ARGV[i + 1] then
    redis.call('ZREM', KEYS[1], ARGV[i])
    redis.call('HDEL', KEYS[2], ARGV[i])
    redis.call('HDEL', KEYS[3], ARGV[i])
    n = n + 1
  end
end
return n
"""

# KEYS: due, data, tries, dead, deadinfo. ARGV: now, max attempts, backoff base, cap, give-up
# reason ("" unless giving up), then id, error, id, error, ... Returns per id "retry" or the
# reason it was parked ("attempts" or the give-up reason).
FAIL = """
local now = tonumber(ARGV[1])
local out = {}
for i = 6, #ARGV, 2 do
  local id = ARGV[i]
  local tries = redis.call('HINCRBY', KEYS[3], id, 1)
  local reason = ARGV[5]
  if reason == '' and tries >= tonumber(ARGV[2]) then reason = 'attempts' end
  if reason ~= '' then
    local payload = redis.call('HGET', KEYS[2], id) or ''
    redis.call('ZREM', KEYS[1], id)
    redis.call('HDEL', KEYS[2], id)
    redis.call('HDEL', KEYS[3], id)
    redis.call('ZADD', KEYS[4], now, id)
    redis.call('HSET', KEYS[5], id, reason .. '|' .. tries .. '|' .. payload .. '|' .. ARGV[i + 1])
    out[#out + 1] = reason
  else
    local delay = math.min(tonumber(ARGV[3]) * 2 ^ (tries - 1), tonumber(ARGV[4]))
    redis.call('ZADD', KEYS[1], now + delay, id)
    out[#out + 1] = 'retry'
  end
end
return out
"""


@dataclass(frozen=True, slots=True)
class Partition:
    """One shard of one key step: the keys its scripts touch."""

    journey: str
    step: str
    shard: int
    prefix: str = PREFIX

    def key(self, part: str) -> str:
        return f"{self.prefix}:{{{self.journey}:{self.step}:{self.shard}}}:{part}"

    @property
    def apply_keys(self) -> list[str]:
        return [self.key("due"), self.key("data"), self.key("prog")]

    @property
    def fail_keys(self) -> list[str]:
        return [self.key(p) for p in ("due", "data", "tries", "dead", "deadinfo")]


def shard_of(instance_id: str, shards: int = SHARDS) -> int:
    """The partition of an instance: its random hex id's last digits (CRC-32 of any other id)."""
    try:
        return int(instance_id[-6:], 16) % shards
    except ValueError:
        return zlib.crc32(instance_id.encode()) % shards


def partitions(spec: Spec, shards: int = SHARDS, prefix: str = PREFIX) -> Iterator[Partition]:
    """Every partition of every key step of ``spec``."""
    for journey in spec.journeys:
        for step in journey.key_steps:
            for shard in range(shards):
                yield Partition(journey.name, step.name, shard, prefix)


CLUSTER_SCHEMES = ("redis+cluster://", "rediss+cluster://")


def connect(url: str, timeout: float) -> Any:
    """A client for ``url``: ``redis://``/``rediss://``/``unix://`` a single Redis (or a managed
    primary), ``redis+cluster://host:port`` (``rediss+cluster://`` with TLS) a Redis Cluster
    reached through any of its nodes."""
    import redis

    if url.startswith(CLUSTER_SCHEMES):
        from redis.cluster import RedisCluster

        return RedisCluster.from_url(  # type: ignore[no-untyped-call]
            url.replace("+cluster", "", 1),
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
        )
    return redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)


class Script:
    """A Lua script called on one partition's keys, alone or queued on a pipeline.

    A single Redis runs it by SHA (``EVALSHA``, loaded on first use). A cluster pipeline refuses
    ``EVALSHA`` (a node that lost its script cache would fail the whole pipeline), so on a cluster
    it is sent whole (``EVAL``): Redis caches the compiled script by its digest, the cost is the
    script's bytes (a few hundred) per call, and every call goes to the node of its slot."""

    def __init__(self, client: Any, text: str) -> None:
        from redis.cluster import RedisCluster

        self.client, self.text = client, text
        self.cluster = isinstance(client, RedisCluster)
        self.registered = None if self.cluster else client.register_script(text)

    def __call__(self, keys: Sequence[str], args: Sequence[Any], client: Any = None) -> Any:
        if self.registered is not None:
            return self.registered(keys=keys, args=args, client=client)
        target = self.client if client is None else client
        return target.execute_command("EVAL", self.text, len(keys), *keys, *args)


def encode(since: float, channel: str, segment: str, customer_ref: str | None) -> str:
    return f"{since:.3f}|{channel}|{segment}|{customer_ref or ''}"


def decode(payload: str) -> tuple[float, str, str, str | None]:
    """``(since, channel, segment, customer_ref)``; a payload written before segments were
    carried (``since|channel|customer_ref``) reads as segment ``none``."""
    parts = payload.split("|")
    if len(parts) == 3:
        parts.insert(2, NONE)
    since, channel, segment, customer = parts[0], parts[1], parts[2], "|".join(parts[3:])
    return float(since), channel, segment, customer or None
