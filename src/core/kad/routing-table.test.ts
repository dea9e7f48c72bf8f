import assert from 'node:assert/strict'
import { test } from 'node:test'
import { Prng } from '../prng.ts'
import { asPeerId } from '../sans-io.ts'
import { compareDistance, keyFromBytes, randomKeyAtPrefixLength, type Key } from './key.ts'
import { DEFAULT_ROUTING_TABLE_CONFIG, RoutingTable, type RoutingTableConfig } from './routing-table.ts'

const prng = Prng.fromSeed(11n)
const self = keyFromBytes(Uint8Array.of(0))
const HOUR_MS = 3_600_000

function table(overrides: Partial<RoutingTableConfig> = {}): RoutingTable {
  return new RoutingTable({ ...DEFAULT_ROUTING_TABLE_CONFIG, self, ...overrides }, 0)
}

function keyAt(prefixLength: number): Key {
  return randomKeyAtPrefixLength(self, prefixLength, () => prng.int(256))
}

const LOCAL = ['/ip4/127.0.0.1/tcp/4001']

test('closest() returns what sorting every contact by XOR distance returns', () => {
  const routing = table()
  for (let index = 0; index < 2_000; index++) routing.insert(index, asPeerId(`p${index}`), keyFromBytes(new Uint8Array(Uint32Array.of(index).buffer)), LOCAL)
  const contacts = routing.buckets().flatMap((bucket) => bucket.contacts)
  assert.equal(contacts.length, routing.size)
  assert.ok(routing.size > 100 && routing.size < 2_000, `${routing.size} contacts`)
  for (let round = 0; round < 50; round++) {
    const target = keyFromBytes(Uint8Array.of(round, 1))
    const expected = [...contacts].sort((a, b) => compareDistance(target, a.key, b.key)).slice(0, 20).map((contact) => contact.peer)
    assert.deepEqual(routing.closest(target, 20).map((contact) => contact.peer), expected)
  }
  assert.deepEqual(routing.closest(self, 5).map((contact) => contact.peer), [...contacts].sort((a, b) => compareDistance(self, a.key, b.key)).slice(0, 5).map((contact) => contact.peer))
  for (let prefixLength = 0; prefixLength < 12; prefixLength++) {
    const near = keyAt(prefixLength)
    const expected = [...contacts].sort((a, b) => compareDistance(near, a.key, b.key)).slice(0, 60).map((contact) => contact.peer)
    assert.deepEqual(routing.closest(near, 60).map((contact) => contact.peer), expected, `a target ${prefixLength} bits from self`)
  }
  const target = keyFromBytes(Uint8Array.of(7))
  const ranked = [...contacts].sort((a, b) => compareDistance(target, a.key, b.key)).map((contact) => contact.peer)
  assert.deepEqual(routing.closest(target, 100, ranked[3]).map((contact) => contact.peer), ranked.filter((_, index) => index !== 3).slice(0, 100), 'across buckets, one excluded')
  assert.deepEqual(routing.closest(target, 10_000).map((contact) => contact.peer), ranked, 'every contact, when more are asked for')
})

test('a full bucket keeps its oldest contact while it answers, and promotes a replacement when it does not', () => {
  const routing = table({ bucketSize: 3, replacementCacheSize: 2, contactFreshMs: 0 })
  const [a, b, c, d, e, f] = ['a', 'b', 'c', 'd', 'e', 'f'].map(asPeerId) as [ReturnType<typeof asPeerId>, ...ReturnType<typeof asPeerId>[]]
  for (const [time, peer] of [a, b, c].entries()) assert.deepEqual(routing.insert(time, peer!, keyAt(0), LOCAL), { outcome: 'added' })
  const checkA = routing.insert(10, d!, keyAt(0), LOCAL)
  assert.equal(checkA.outcome, 'check-oldest')
  assert.equal(checkA.outcome === 'check-oldest' && checkA.oldest.peer, a)
  assert.deepEqual(routing.insert(11, e!, keyAt(0), LOCAL), { outcome: 'queued' }, 'one check at a time per bucket')

  assert.equal(routing.checked(12, a, true), undefined, 'a answered: it stays, newest now')
  assert.deepEqual(routing.buckets()[0]!.contacts.map((contact) => contact.peer), [b, c, a])
  assert.deepEqual(routing.buckets()[0]!.replacements.map((contact) => contact.peer), [d, e])

  const checkB = routing.insert(13, f!, keyAt(0), LOCAL)
  assert.equal(checkB.outcome === 'check-oldest' && checkB.oldest.peer, b)
  assert.deepEqual(routing.buckets()[0]!.replacements.map((contact) => contact.peer), [e, f], 'the cache is bounded; the oldest candidate goes')
  const promoted = routing.checked(14, b!, false)
  assert.equal(promoted?.peer, f, 'the most recent replacement takes the place')
  assert.deepEqual(routing.buckets()[0]!.contacts.map((contact) => contact.peer), [c, a, f])
  assert.equal(routing.get(b!), undefined)
})

test('a newcomer to a full bucket of recently seen contacts waits without a liveness check', () => {
  const routing = table({ bucketSize: 2, contactFreshMs: 600_000 })
  const [a, b, c] = [asPeerId('a'), asPeerId('b'), asPeerId('c')]
  routing.insert(0, a, keyAt(0), LOCAL)
  routing.insert(1, b, keyAt(0), LOCAL)
  assert.deepEqual(routing.insert(599_999, c, keyAt(0), LOCAL), { outcome: 'queued' })
  const check = routing.insert(600_000, c, keyAt(0), LOCAL)
  assert.equal(check.outcome === 'check-oldest' && check.oldest.peer, a)
})

test('seeing a contact again makes it the most recently seen and refreshes its addresses', () => {
  const routing = table()
  const [a, b] = [asPeerId('a'), asPeerId('b')]
  routing.insert(0, a, keyAt(3), LOCAL)
  routing.insert(1, b, keyAt(3), LOCAL)
  assert.deepEqual(routing.insert(2, a, routing.get(a)!.key, ['/ip4/127.0.0.2/tcp/1']), { outcome: 'updated' })
  assert.deepEqual(routing.buckets()[0]!.contacts.map((contact) => contact.peer), [b, a])
  assert.deepEqual(routing.get(a)!.addresses, ['/ip4/127.0.0.2/tcp/1'])
  assert.deepEqual(routing.insert(3, asPeerId('me'), self, LOCAL), { outcome: 'rejected', reason: 'self' })
})

test('IP diversity: two contacts of one /16 per bucket, three in the table; private addresses exempt', () => {
  const routing = table()
  const from = (address: string) => [`/ip4/${address}/tcp/4001`]
  assert.equal(routing.insert(0, asPeerId('a'), keyAt(1), from('198.51.1.1')).outcome, 'added')
  assert.equal(routing.insert(0, asPeerId('b'), keyAt(1), from('198.51.2.2')).outcome, 'added')
  assert.deepEqual(routing.insert(0, asPeerId('c'), keyAt(1), from('198.51.3.3')), { outcome: 'rejected', reason: 'ip-group-bucket' })
  assert.equal(routing.insert(0, asPeerId('d'), keyAt(2), from('198.51.4.4')).outcome, 'added')
  assert.deepEqual(routing.insert(0, asPeerId('e'), keyAt(3), from('198.51.5.5')), { outcome: 'rejected', reason: 'ip-group-table' })
  assert.equal(routing.insert(0, asPeerId('f'), keyAt(3), from('203.0.113.1')).outcome, 'added', 'another /16 is fine')
  for (let index = 0; index < 10; index++) assert.equal(routing.insert(0, asPeerId(`local${index}`), keyAt(4), from(`10.0.0.${index}`)).outcome, 'added')

  const strict = table({ privateAddressesExempt: false })
  strict.insert(0, asPeerId('a'), keyAt(1), LOCAL)
  strict.insert(0, asPeerId('b'), keyAt(1), LOCAL)
  assert.deepEqual(strict.insert(0, asPeerId('c'), keyAt(1), LOCAL), { outcome: 'rejected', reason: 'ip-group-bucket' })

  routing.remove(asPeerId('a'))
  assert.equal(routing.insert(0, asPeerId('e'), keyAt(3), from('198.51.5.5')).outcome, 'added', 'removal frees the group')
})

test('buckets not looked into for an hour fall due for refresh, up to the deepest non-empty one', () => {
  const routing = table()
  routing.insert(0, asPeerId('a'), keyAt(0), LOCAL)
  routing.insert(0, asPeerId('b'), keyAt(2), LOCAL)
  assert.deepEqual(routing.bucketsDue(HOUR_MS - 1), [])
  assert.deepEqual(routing.bucketsDue(HOUR_MS), [0, 1, 2])
  routing.markLookup(HOUR_MS, keyAt(1))
  assert.deepEqual(routing.bucketsDue(HOUR_MS), [0, 2])
  assert.equal(routing.nextRefreshAt(), HOUR_MS)
})

test('a bucket is due at the very time nextRefreshAt() names, whatever the rounding of its times', () => {
  // (2,544,681.1051134323 + an hour) - 2,544,681.1051134323 is just under an hour.
  const createdMs = 2_544_681.1051134323
  const routing = new RoutingTable({ ...DEFAULT_ROUTING_TABLE_CONFIG, self }, createdMs)
  routing.insert(createdMs, asPeerId('a'), keyAt(0), LOCAL)
  const at = routing.nextRefreshAt()!
  assert.ok(at - createdMs < HOUR_MS, 'the case this test is about')
  assert.deepEqual(routing.bucketsDue(at), [0])
})
