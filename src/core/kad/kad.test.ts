import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { Prng } from '../prng.ts'
import { asPeerId, type Millis, type PeerId } from '../sans-io.ts'
import { DEFAULT_KAD_CONFIG, Kad, type KadAction, type KadConfig, type KadEvent, type KadInput } from './kad.ts'
import { keyFromBytes, randomKeyAtPrefixLength } from './key.ts'
import type { KadMessage } from './messages.ts'
import { DEFAULT_RECORD_VALIDATORS, type RecordValidator } from './validators.ts'

const encoder = new TextEncoder()
const peerBytes = (peer: PeerId): Uint8Array => encoder.encode(peer)

/** Accepts `/test/...` values that start with "ok"; prefers the longest. */
const testValidator: RecordValidator = {
  validate: (_key, value) => (value[0] === 0x6f && value[1] === 0x6b ? undefined : 'test-invalid'),
  select: (_key, values) => values.reduce((best, value, index) => (value.byteLength > values[best]!.byteLength ? index : best), 0),
}

/**
 * A zero-latency network of Kad cores: requests and responses are queued and delivered in
 * order; a peer in `silent` never answers, so its requesters time out.
 */
class TestNetwork {
  readonly cores = new Map<PeerId, Kad>()
  readonly events: Array<{ peer: PeerId; event: KadEvent }> = []
  readonly persisted: Array<{ peer: PeerId; action: Extract<KadAction, { type: 'persist' }> }> = []
  readonly silent = new Set<PeerId>()
  readonly clients = new Set<PeerId>()
  /** What the driver reports requesters' addresses as (identify's, in a real node); none if unset. */
  readonly addresses = new Map<PeerId, string[]>()
  readonly requestsSeen: Array<{ from: PeerId; to: PeerId; message: KadMessage }> = []
  now: Millis = 0
  readonly #queue: Array<{ to: PeerId; input: KadInput }> = []

  add(name: string, overrides: Partial<KadConfig> = {}): Kad {
    const self = asPeerId(name)
    const core = new Kad({
      ...DEFAULT_KAD_CONFIG,
      self,
      keyOfPeer: (peer) => keyFromBytes(peerBytes(peer)),
      peerIdBytes: peerBytes,
      prng: Prng.fromSeed(name),
      mode: 'server',
      // Joins are cheap in these small networks; one test below covers the refresh.
      refreshOnJoin: false,
      validators: new Map([...DEFAULT_RECORD_VALIDATORS, ['test', testValidator]]),
      ...overrides,
    }, this.now)
    this.cores.set(self, core)
    return core
  }

  input(peer: string, input: KadInput): void {
    this.#queue.push({ to: asPeerId(peer), input })
    this.run()
  }

  /** Delivers until quiet. */
  run(): void {
    for (let next = this.#queue.shift(); next !== undefined; next = this.#queue.shift()) {
      const core = this.cores.get(next.to)
      if (core === undefined) continue
      core.handle(this.now, next.input)
      for (let action = core.poll(); action !== undefined; action = core.poll()) this.#execute(next.to, action)
    }
  }

  /** Advances the clock, ticking every core whose deadline passed. */
  advance(ms: Millis): void {
    this.now += ms
    for (const [peer, core] of this.cores) {
      const deadline = core.nextDeadline()
      if (deadline !== undefined && deadline <= this.now) this.#queue.push({ to: peer, input: { type: 'tick' } })
    }
    this.run()
  }

  eventsOf(peer: string, type: KadEvent['type']): KadEvent[] {
    return this.events.filter((entry) => entry.peer === peer && entry.event.type === type).map((entry) => entry.event)
  }

  done(peer: string, queryId: number): Extract<KadEvent, { type: 'query-done' }> {
    const event = this.events.find((entry) => entry.peer === peer && entry.event.type === 'query-done' && entry.event.queryId === queryId)
    assert.ok(event, `query ${queryId} of ${peer} is not done`)
    return event.event as Extract<KadEvent, { type: 'query-done' }>
  }

  #execute(from: PeerId, action: KadAction): void {
    switch (action.type) {
      case 'emit':
        this.events.push({ peer: from, event: action.event })
        return
      case 'persist':
        this.persisted.push({ peer: from, action })
        return
      case 'request': {
        this.requestsSeen.push({ from, to: action.to, message: action.message })
        const target = this.cores.get(action.to)
        if (target === undefined || this.clients.has(action.to)) {
          this.#queue.push({ to: from, input: { type: 'request-failed', peer: action.to, id: action.id, reason: 'dial-failed' } })
          return
        }
        if (this.silent.has(action.to)) return
        // The request's id doubles as the inbound id: unique per remote, as the contract allows.
        this.#queue.push({ to: action.to, input: { type: 'request', from, id: action.id, message: action.message, addresses: this.addresses.get(from) ?? [], remoteIsServer: !this.clients.has(from) } })
        if (action.oneWay) this.#queue.push({ to: from, input: { type: 'response', from: action.to, id: action.id, message: undefined } })
        return
      }
      case 'respond':
        this.#queue.push({ to: action.to, input: { type: 'response', from, id: action.id, message: action.message } })
    }
  }
}

/** n servers, each introduced to the first (a bootstrap peer), then settled. */
function network(count: number, overrides: Partial<KadConfig> = {}): TestNetwork {
  const net = new TestNetwork()
  for (let index = 0; index < count; index++) net.add(`peer-${index}`, overrides)
  for (let index = 1; index < count; index++) {
    net.input(`peer-${index}`, { type: 'peer-connected', peer: asPeerId('peer-0'), direction: 'outbound', addresses: [] })
    net.input('peer-0', { type: 'peer-connected', peer: asPeerId(`peer-${index}`), direction: 'inbound', addresses: [] })
  }
  // Self-lookups spread the contacts; a minute later a second round fills the tables.
  for (let index = 0; index < count; index++) net.input(`peer-${index}`, { type: 'find-closest', queryId: 1_000_000, key: peerBytes(asPeerId(`peer-${index}`)) })
  return net
}

/** The `count` peers closest to `key` by XOR, computed from all ids: the ground truth. */
function trueClosest(net: TestNetwork, key: Uint8Array, count: number): PeerId[] {
  const target = keyFromBytes(key)
  const distance = (peer: PeerId) => Buffer.from(keyFromBytes(peerBytes(peer)).map((byte, index) => byte ^ target[index]!)).toString('hex')
  return [...net.cores.keys()].sort((a, b) => distance(a).localeCompare(distance(b))).slice(0, count)
}

describe('Kad', () => {
  it('finds the k closest peers to a key in a 200-peer network', () => {
    const net = network(200)
    for (let trial = 0; trial < 10; trial++) {
      const key = encoder.encode(`content-${trial}`)
      net.input('peer-7', { type: 'find-closest', queryId: trial, key })
      const done = net.done('peer-7', trial)
      assert.equal(done.outcome, 'ok')
      assert.deepEqual(done.closest, trueClosest(net, key, 20).filter((peer) => peer !== 'peer-7').slice(0, done.closest.length))
      assert.ok(done.closest.length >= 19)
      assert.ok(done.stats.hops >= 1 && done.stats.hops <= 6, `hops ${done.stats.hops}`)
    }
  })

  it('provides and finds providers, with the provider addresses it announced', () => {
    const net = network(100)
    const key = encoder.encode('multihash-of-some-content')
    net.input('peer-3', { type: 'set-addresses', addresses: ['/ip4/127.0.0.1/tcp/4001'] })
    net.input('peer-3', { type: 'provide', queryId: 1, key })
    const provided = net.done('peer-3', 1)
    assert.equal(provided.outcome, 'ok')
    assert.equal(provided.storedCount, 20)
    // The records landed on the 20 closest peers that answered.
    for (const peer of provided.closest) assert.ok(net.cores.get(peer)!.holdsProvider(key, asPeerId('peer-3')), `${peer} lacks the record`)
    assert.ok(net.persisted.some((entry) => entry.action.change.op === 'put-provider'))

    net.input('peer-50', { type: 'find-providers', queryId: 2, key, countMax: 5 })
    const providers = net.eventsOf('peer-50', 'provider')
    assert.equal(providers.length, 1)
    assert.deepEqual(providers[0], { type: 'provider', queryId: 2, provider: { id: 'peer-3', addresses: ['/ip4/127.0.0.1/tcp/4001'], connection: 'not-connected' } })
    const done = net.done('peer-50', 2)
    assert.equal(done.outcome, 'ok')
    assert.ok(done.stats.firstResultMs !== undefined)
  })

  it('stops a provider search at countMax and reports not-found when nobody provides', () => {
    const net = network(60)
    const key = encoder.encode('popular')
    for (let index = 10; index < 14; index++) net.input(`peer-${index}`, { type: 'provide', queryId: 1, key })
    net.input('peer-40', { type: 'find-providers', queryId: 2, key, countMax: 2 })
    assert.equal(net.eventsOf('peer-40', 'provider').length, 2)
    assert.equal(net.done('peer-40', 2).outcome, 'ok')
    net.input('peer-40', { type: 'find-providers', queryId: 3, key: encoder.encode('nobody'), countMax: 2 })
    assert.equal(net.done('peer-40', 3).outcome, 'not-found')
  })

  it('republishes what it provides every republish interval', () => {
    const net = network(40, { providerRepublishIntervalMs: 60_000, providerRecordTtlMs: 120_000 })
    const key = encoder.encode('held content')
    net.input('peer-1', { type: 'provide', queryId: 1, key })
    const adds = () => net.requestsSeen.filter((request) => request.from === 'peer-1' && request.message.type === 'ADD_PROVIDER').length
    assert.equal(adds(), 20)
    net.advance(60_000)
    assert.equal(adds(), 40)
    net.input('peer-1', { type: 'unprovide', key })
    net.advance(60_000)
    assert.equal(adds(), 40)
  })

  it('expires provider records after their lifetime and tells the node to forget them', () => {
    const net = network(30, { providerRecordTtlMs: 10 * 60_000, expirySweepIntervalMs: 60_000 })
    const key = encoder.encode('short-lived')
    net.input('peer-2', { type: 'provide', queryId: 1, key })
    net.input('peer-2', { type: 'unprovide', key })
    const holder = net.done('peer-2', 1).closest[0]!
    assert.ok(net.cores.get(holder)!.holdsProvider(key, asPeerId('peer-2')))
    for (let minute = 0; minute < 11; minute++) net.advance(60_000)
    assert.equal(net.cores.get(holder)!.holdsProvider(key, asPeerId('peer-2')), false)
    assert.ok(net.persisted.some((entry) => entry.peer === holder && entry.action.change.op === 'delete-provider'))
  })

  it('refuses provider records announced on behalf of another peer', () => {
    const net = network(5)
    const key = encoder.encode('k')
    net.input('peer-1', { type: 'request', from: asPeerId('peer-2'), id: 1, addresses: [], remoteIsServer: true, message: { type: 'ADD_PROVIDER', key, record: undefined, closerPeers: [], providerPeers: [{ id: asPeerId('peer-3'), addresses: [], connection: 'connected' }] } })
    assert.equal(net.cores.get(asPeerId('peer-1'))!.holdsProvider(key, asPeerId('peer-3')), false)
    assert.equal(net.cores.get(asPeerId('peer-1'))!.counters.providersRejectedNotSender, 1)
  })

  it('rate-limits a flood of ADD_PROVIDER from one peer and bounds the store', () => {
    const net = network(3, { writesPerPeerBurst: 50, writesPerPeerPerSecond: 1, providers: { providersPerKeyMax: 64, providerRecordsMax: 30 } })
    const core = net.cores.get(asPeerId('peer-1'))!
    for (let index = 0; index < 1_000; index++) {
      net.input('peer-1', { type: 'request', from: asPeerId('peer-2'), id: index, addresses: [], remoteIsServer: true, message: { type: 'ADD_PROVIDER', key: encoder.encode(`key-${index}`), record: undefined, closerPeers: [], providerPeers: [{ id: asPeerId('peer-2'), addresses: [], connection: 'connected' }] } })
    }
    assert.equal(core.counters.writesRateLimited, 950)
    assert.equal(core.providerRecordCount, 30)
    assert.equal(core.counters.providersRejectedStoreFull, 20)
  })

  it('puts and gets a value; the best value wins and stale holders are corrected', () => {
    const net = network(80)
    const key = encoder.encode('/test/name')
    net.input('peer-5', { type: 'put-value', queryId: 1, key, value: encoder.encode('ok-1') })
    const put = net.done('peer-5', 1)
    assert.equal(put.outcome, 'ok')
    assert.equal(put.storedCount, 20)
    // A better value reaches one holder only.
    const holder = put.closest[0]!
    net.input(holder, { type: 'request', from: asPeerId('peer-6'), id: 9, addresses: [], remoteIsServer: true, message: { type: 'PUT_VALUE', key, record: { key, value: encoder.encode('ok-22'), timeReceived: '' }, closerPeers: [], providerPeers: [] } })
    net.input('peer-60', { type: 'get-value', queryId: 2, key })
    const got = net.done('peer-60', 2)
    assert.equal(got.outcome, 'ok')
    assert.equal(new TextDecoder().decode(got.value), 'ok-22')
    // Correction: the other holders now have the better value.
    const corrections = net.requestsSeen.filter((request) => request.from === 'peer-60' && request.message.type === 'PUT_VALUE')
    assert.ok(corrections.length >= 15, `${corrections.length} corrections`)
  })

  it('refuses invalid values at put and at receipt, and never stores them', () => {
    const net = network(10)
    const key = encoder.encode('/test/name')
    net.input('peer-1', { type: 'put-value', queryId: 1, key, value: encoder.encode('bad') })
    assert.equal(net.done('peer-1', 1).outcome, 'invalid-record')
    const target = net.cores.get(asPeerId('peer-2'))!
    for (const [index, record] of [
      { key, value: encoder.encode('bad') },
      { key: encoder.encode('/test/other'), value: encoder.encode('ok') },
      { key: encoder.encode('/unknown/x'), value: encoder.encode('ok') },
    ].entries()) {
      net.input('peer-2', { type: 'request', from: asPeerId('peer-3'), id: index, addresses: [], remoteIsServer: true, message: { type: 'PUT_VALUE', key: index === 2 ? record.key : key, record: { ...record, timeReceived: '' }, closerPeers: [], providerPeers: [] } })
    }
    assert.equal(target.valueRecordCount, 0)
    assert.equal(target.counters.valuesRejectedInvalid, 3)
  })

  it('finds a peer by id', () => {
    const net = network(100)
    net.input('peer-9', { type: 'find-peer', queryId: 1, peer: asPeerId('peer-77') })
    const found = net.eventsOf('peer-9', 'peer-found')
    assert.equal(found.length, 1)
    assert.equal(net.done('peer-9', 1).outcome, 'ok')
    net.input('peer-9', { type: 'find-peer', queryId: 2, peer: asPeerId('nobody') })
    assert.equal(net.done('peer-9', 2).outcome, 'not-found')
  })

  it('names itself first when asked for its own id, so a peer only the asker knows is found', () => {
    const net = network(2)
    net.input('peer-1', { type: 'set-addresses', addresses: ['/ip4/127.0.0.1/tcp/4001'] })
    net.input('peer-0', { type: 'find-peer', queryId: 1, peer: asPeerId('peer-1') })
    // peer-0 knows peer-1 from the connection but with no address: it must ask peer-1 itself.
    const found = net.eventsOf('peer-0', 'peer-found')
    assert.deepEqual(found, [{ type: 'peer-found', queryId: 1, peer: { id: 'peer-1', addresses: ['/ip4/127.0.0.1/tcp/4001'], connection: 'connected' } }])
    const answer = net.requestsSeen.find((request) => request.from === 'peer-0' && request.to === 'peer-1' && request.message.type === 'FIND_NODE')
    assert.ok(answer !== undefined)
    assert.equal(net.done('peer-0', 1).outcome, 'ok')
  })

  it('times out silent peers, evicts them from the table, and still completes', () => {
    const net = network(60)
    for (let index = 20; index < 40; index++) net.silent.add(asPeerId(`peer-${index}`))
    const key = encoder.encode('through silence')
    net.input('peer-1', { type: 'find-closest', queryId: 1, key })
    for (let step = 0; step < 20 && !net.events.some((entry) => entry.peer === 'peer-1' && entry.event.type === 'query-done' && entry.event.queryId === 1); step++) net.advance(1_000)
    const done = net.done('peer-1', 1)
    assert.equal(done.outcome, 'ok')
    const core = net.cores.get(asPeerId('peer-1'))!
    assert.ok(core.counters.requestsTimedOut > 0)
    for (const peer of done.closest) assert.ok(!net.silent.has(peer))
    // Peers ranked past k overall are named by nobody while the silent ones still fill the
    // others' tables, so most, not all, of the 20 closest live peers are found.
    const truth = trueClosest(net, key, 60).filter((peer) => !net.silent.has(peer) && peer !== 'peer-1').slice(0, 20)
    assert.ok(truth.filter((peer) => done.closest.includes(peer)).length >= 15)
  })

  it('keeps a long-lived contact over a newcomer when the contact answers its liveness check', () => {
    const net = network(3, { routing: { ...DEFAULT_KAD_CONFIG.routing, bucketSize: 1, contactFreshMs: 0 } })
    const core = net.cores.get(asPeerId('peer-0'))!
    // Fill peer-0's buckets with peers from outside, then offer rivals for the same buckets.
    const before = core.buckets().map((bucket) => bucket.contacts.map((contact) => contact.peer))
    for (let index = 0; index < 40; index++) {
      const name = `rival-${index}`
      net.add(name)
      net.input('peer-0', { type: 'peer-connected', peer: asPeerId(name), direction: 'inbound', addresses: [] })
    }
    const after = core.buckets().map((bucket) => bucket.contacts.map((contact) => contact.peer))
    for (const contacts of before) for (const peer of contacts) assert.ok(after.some((bucket) => bucket.includes(peer)), `${peer} was evicted`)
    assert.ok(core.counters.livenessChecks > 0)
  })

  it('evicts a contact that fails its liveness check and promotes the replacement', () => {
    const net = network(2, { routing: { ...DEFAULT_KAD_CONFIG.routing, bucketSize: 1, contactFreshMs: 0 } })
    const core = net.cores.get(asPeerId('peer-0'))!
    net.silent.add(asPeerId('peer-1'))
    // A rival in peer-1's bucket: the bucket is full (k = 1), so peer-1 is checked.
    let rival: string | undefined
    const bucketOf = (peer: string) => core.buckets().find((bucket) => bucket.contacts.some((contact) => contact.peer === peer))?.index
    const target = bucketOf('peer-1')
    for (let index = 0; rival === undefined && index < 1_000; index++) {
      const name = `candidate-${index}`
      net.add(name)
      net.input('peer-0', { type: 'peer-connected', peer: asPeerId(name), direction: 'inbound', addresses: [] })
      if (core.buckets().find((bucket) => bucket.index === target)?.replacements.some((contact) => contact.peer === name)) rival = name
    }
    assert.ok(rival)
    net.advance(DEFAULT_KAD_CONFIG.requestTimeoutMs)
    assert.equal(bucketOf('peer-1'), undefined)
    assert.equal(bucketOf(rival), target)
  })

  it('servers name a connected client when asked for it (one behind a NAT is found), and forget it once it disconnects', () => {
    const net = network(30)
    const client = asPeerId('client')
    net.add('client', { mode: 'client' })
    net.clients.add(client)
    net.addresses.set(client, ['/ip4/10.0.2.2/tcp/4001'])
    net.input('client', { type: 'peer-connected', peer: asPeerId('peer-0'), direction: 'outbound', addresses: [] })
    // Its self-lookup reaches the servers closest to it, those a search for it ends at.
    net.input('client', { type: 'find-closest', queryId: 1, key: peerBytes(client) })
    const asked = new Set(net.requestsSeen.filter((request) => request.from === client).map((request) => request.to))
    // Then it got a reservation on a relay, and identify-push told the servers.
    const relayed = '/ip4/11.0.0.10/tcp/4001/p2p/12D3KooWCwithWR4qvuXXsxgUkLR7d3HHNq8UU1Zi5QVYubcxMVK/p2p-circuit'
    for (const server of asked) net.input(server, { type: 'client-identified', peer: client, addresses: [relayed] })
    net.input('peer-9', { type: 'find-peer', queryId: 1, peer: client })
    assert.deepEqual(net.eventsOf('peer-9', 'peer-found'), [{ type: 'peer-found', queryId: 1, peer: { id: client, addresses: [relayed], connection: 'connected' } }])
    for (const server of asked) net.input(server, { type: 'peer-disconnected', peer: client })
    net.input('peer-9', { type: 'find-peer', queryId: 2, peer: client })
    assert.equal(net.done('peer-9', 2).outcome, 'not-found')
    // A peer that never asked anything is not named on its word.
    const server = net.cores.get(asPeerId('peer-3'))!
    server.handle(net.now, { type: 'client-identified', peer: asPeerId('stranger'), addresses: [relayed] })
    server.handle(net.now, { type: 'request', from: asPeerId('peer-4'), id: 7, addresses: [], remoteIsServer: true, message: { type: 'FIND_NODE', key: peerBytes(asPeerId('stranger')), record: undefined, closerPeers: [], providerPeers: [] } })
    const answer = server.poll()
    assert.ok(answer?.type === 'respond' && !answer.message.closerPeers.some((peer) => peer.id === 'stranger'))
  })

  it('as a client it answers nothing and servers keep it out of their tables', () => {
    const net = network(20)
    const client = net.add('client', { mode: 'client' })
    net.clients.add(asPeerId('client'))
    net.input('client', { type: 'peer-connected', peer: asPeerId('peer-0'), direction: 'outbound', addresses: [] })
    net.input('client', { type: 'find-closest', queryId: 1, key: encoder.encode('x') })
    assert.equal(net.done('client', 1).outcome, 'ok')
    for (const [peer, core] of net.cores) {
      if (peer === 'client') continue
      assert.ok(!core.buckets().some((bucket) => bucket.contacts.some((contact) => contact.peer === 'client')), `${peer} added the client`)
    }
    net.input('client', { type: 'request', from: asPeerId('peer-1'), id: 1, addresses: [], remoteIsServer: true, message: { type: 'PING', key: new Uint8Array(0), record: undefined, closerPeers: [], providerPeers: [] } })
    assert.equal(client.counters.requestsIgnored, 1)
  })

  it('runs disjoint paths that share no peer', () => {
    const net = network(150, { disjointPaths: 3 })
    const key = encoder.encode('disjoint')
    net.input('peer-4', { type: 'provide', queryId: 1, key })
    const seenBefore = net.requestsSeen.length
    net.input('peer-90', { type: 'find-providers', queryId: 2, key, countMax: 20 })
    assert.equal(net.done('peer-90', 2).outcome, 'ok')
    const asked = net.requestsSeen.slice(seenBefore).filter((request) => request.from === 'peer-90' && request.message.type === 'GET_PROVIDERS').map((request) => request.to)
    assert.equal(new Set(asked).size, asked.length, 'a peer was asked twice')
  })

  it('refreshes every bucket once it has joined', () => {
    const net = network(30, { refreshOnJoin: true })
    const newcomer = net.add('newcomer', { refreshOnJoin: true })
    const before = net.requestsSeen.length
    net.input('newcomer', { type: 'peer-discovered', peer: asPeerId('peer-0'), addresses: [], source: 'bootstrap' })
    const lookups = new Set(net.requestsSeen.slice(before).filter((request) => request.from === 'newcomer' && request.message.type === 'FIND_NODE').map((request) => Buffer.from(request.message.key).toString('hex')))
    const deepest = Math.max(...newcomer.buckets().filter((bucket) => bucket.contacts.length > 0).map((bucket) => bucket.index))
    // The self-lookup, then one refresh per bucket up to the deepest filled one.
    assert.equal(lookups.size, 1 + Math.min(deepest, 15) + 1)
    assert.ok(newcomer.tableSize >= 20)
  })

  it('refreshes buckets too deep for a made-up key by looking itself up, and its deadline moves on', () => {
    const net = new TestNetwork()
    const prng = Prng.fromSeed('deep')
    const deepKey = randomKeyAtPrefixLength(keyFromBytes(peerBytes(asPeerId('a'))), 20, () => prng.int(256))
    const keyOfPeer = (peer: PeerId) => (peer === 'deep' ? deepKey : keyFromBytes(peerBytes(peer)))
    const a = net.add('a', { keyOfPeer })
    net.add('deep', { keyOfPeer })
    net.input('a', { type: 'peer-connected', peer: asPeerId('deep'), direction: 'outbound', addresses: [] })
    assert.deepEqual(a.buckets().filter((bucket) => bucket.contacts.length > 0).map((bucket) => bucket.index), [20])
    const before = net.requestsSeen.length
    net.advance(61 * 60_000)
    const selfLookups = net.requestsSeen.slice(before).filter((request) => request.from === 'a' && request.message.type === 'FIND_NODE' && Buffer.from(request.message.key).toString() === 'a')
    assert.equal(selfLookups.length, 1, 'one lookup of its own id for the deep bucket')
    assert.ok(a.nextDeadline()! > net.now, 'no bucket is left due, so the core does not ask to be ticked again at once')
  })

  it('queues queries past queriesMax and refuses past the queue', () => {
    const net = network(10, { queriesMax: 1, queriesQueuedMax: 1 })
    for (const peer of net.cores.keys()) if (peer !== 'peer-1') net.silent.add(peer)
    for (let queryId = 1; queryId <= 3; queryId++) net.input('peer-1', { type: 'find-closest', queryId, key: encoder.encode(`q${queryId}`) })
    assert.equal(net.done('peer-1', 3).outcome, 'busy')
    net.advance(DEFAULT_KAD_CONFIG.queryTimeoutMs)
    assert.equal(net.done('peer-1', 1).outcome, 'timeout')
  })

  it('counts peers the decoder dropped and ignores responses nobody asked for', () => {
    const net = network(3)
    const core = net.cores.get(asPeerId('peer-1'))!
    net.input('peer-1', { type: 'response', from: asPeerId('peer-2'), id: 12345, message: { type: 'FIND_NODE', key: new Uint8Array(0), record: undefined, closerPeers: [], providerPeers: [], peersDropped: 3 } })
    assert.equal(core.counters.responsesUnexpected, 1)
    net.input('peer-1', { type: 'request', from: asPeerId('peer-2'), id: 1, addresses: [], remoteIsServer: true, message: { type: 'PING', key: new Uint8Array(0), record: undefined, closerPeers: [], providerPeers: [], peersDropped: 250 } })
    assert.equal(core.counters.peersDroppedByDecoder, 250)
  })
})
