import assert from 'node:assert/strict'
import { test } from 'node:test'
import { asPeerId, type PeerId } from '../core/sans-io.ts'
import type { NetworkConfig } from './network-model.ts'
import { Simulator } from './simulator.ts'
import { RequestLoadCore, SCRIPTED_LATENCY_MS, scriptedSimulator, type BlobMessage } from './test-cores.ts'

const LATENCY_MS = SCRIPTED_LATENCY_MS

const blob = (label: string, bytes = 100): BlobMessage => ({ type: 'blob', bytes, label })

/** Answers `ask:<x>` with `reply:<x>` and leaves everything else unanswered. */
const answer = (message: BlobMessage): BlobMessage | undefined => (message.label.startsWith('ask:') ? blob(`reply:${message.label.slice(4)}`, 50) : undefined)

function setup(peerCount: number, options: { network?: Partial<NetworkConfig>; servesProtocol?: (index: number) => boolean } = {}) {
  const { sim, cores, act, connect } = scriptedSimulator(peerCount, { ...options, answer })
  const request = (from: number, to: number | PeerId, id: number, label: string, oneWay = false) =>
    act(from, { type: 'request', to: typeof to === 'number' ? sim.idOf(to) : to, addresses: [], id, message: blob(label), oneWay })
  /** What each request of `peer` came to, as [time, id, outcome]. */
  const ends = (peer: number) =>
    cores[peer]!.inputs.flatMap(({ now, input }) => {
      if (input.type === 'response') return [[now, input.id, input.message?.label ?? 'written']]
      if (input.type === 'request-failed') return [[now, input.id, input.reason]]
      return []
    })
  return { sim, cores, act, request, connect, ends }
}

test('a request on a connection arrives one latency later and its response one more', () => {
  const { sim, cores, request, connect, ends } = setup(2)
  connect(0, 1)
  const sentAt = sim.now
  request(0, 1, 7, 'ask:a')
  sim.run(sentAt + 1_000)
  const [received] = cores[1]!.inputsOfType('request')
  assert.equal(received?.now, sentAt + LATENCY_MS)
  assert.equal(received.input.from, 'p0')
  assert.equal(received.input.message.label, 'ask:a')
  assert.deepEqual(received.input.addresses, [])
  assert.equal(received.input.remoteIsServer, true)
  assert.deepEqual(ends(0), [[sentAt + 2 * LATENCY_MS, 7, 'reply:a']])
  assert.equal(cores[0]!.inputsOfType('response')[0]?.input.from, 'p1')
  const { requestsSent, requestsDelivered, responsesDelivered, respondsDropped, dials } = sim.counters
  assert.deepEqual({ requestsSent, requestsDelivered, responsesDelivered, respondsDropped, dials }, { requestsSent: 1, requestsDelivered: 1, responsesDelivered: 1, respondsDropped: 0, dials: 1 })
})

test('opening a stream costs streamOpenRoundTripCount round trips before the request leaves', () => {
  const { sim, cores, request, connect, ends } = setup(2, { network: { streamOpenRoundTripCount: 1 } })
  connect(0, 1)
  const sentAt = sim.now
  request(0, 1, 1, 'ask:a')
  sim.run(sentAt + 1_000)
  assert.equal(cores[1]!.inputsOfType('request')[0]?.now, sentAt + 3 * LATENCY_MS)
  assert.deepEqual(ends(0), [[sentAt + 4 * LATENCY_MS, 1, 'reply:a']])
})

test('a request to an unconnected peer dials first: handshake, then a round trip; the dial announces the peers', () => {
  const { sim, cores, request, ends } = setup(2)
  request(0, 1, 1, 'ask:a')
  sim.run(1_000)
  assert.deepEqual(cores[0]!.inputsOfType('peer-connected').map(({ now, input }) => [now, input.peer, input.direction]), [[2 * LATENCY_MS, 'p1', 'outbound']])
  assert.deepEqual(cores[1]!.inputsOfType('peer-connected').map(({ now, input }) => [now, input.peer, input.direction]), [[2 * LATENCY_MS, 'p0', 'inbound']])
  assert.equal(cores[1]!.inputsOfType('request')[0]?.now, 3 * LATENCY_MS)
  assert.deepEqual(ends(0), [[4 * LATENCY_MS, 1, 'reply:a']])
  assert.ok(sim.connected(0, 1))
})

test('requests to a peer being dialled share the dial', () => {
  const { sim, cores, request, ends } = setup(2)
  request(0, 1, 1, 'ask:a')
  sim.run(5)
  request(0, 1, 2, 'ask:b')
  sim.run(1_000)
  assert.equal(sim.counters.dials, 1)
  assert.equal(cores[0]!.inputsOfType('peer-connected').length, 1)
  assert.deepEqual(ends(0), [[40, 1, 'reply:a'], [40, 2, 'reply:b']])
  // The same inbound id for two requests would make a respond ambiguous.
  const inboundIds = cores[1]!.inputsOfType('request').map(({ input }) => input.id)
  assert.equal(new Set(inboundIds).size, 2)
})

test('a request to an offline peer fails with dial-failed, to an unknown id with unknown-peer, after the dial timeout', () => {
  const { sim, request, ends } = setup(2)
  sim.leave(1, { crash: false })
  sim.run(0)
  request(0, 1, 1, 'ask:a')
  request(0, asPeerId('nobody'), 2, 'ask:b')
  sim.run(60_000)
  const timeoutMs = sim.network.dialTimeoutMs
  assert.deepEqual(ends(0), [[timeoutMs, 1, 'dial-failed'], [timeoutMs, 2, 'unknown-peer']])
  assert.equal(sim.counters.requestsFailedDial, 1)
  assert.equal(sim.counters.requestsFailedUnknownPeer, 1)
})

test('a request to a peer that does not serve the protocol fails with protocol-unsupported once the connection is up', () => {
  const { sim, cores, request, ends } = setup(2, { servesProtocol: (index) => index !== 1 })
  request(0, 1, 1, 'ask:a')
  sim.run(1_000)
  assert.equal(cores[1]!.inputsOfType('request').length, 0)
  // Connected at 20; the request goes out with the protocol proposal, "na" comes back a round trip later.
  assert.deepEqual(ends(0), [[4 * LATENCY_MS, 1, 'protocol-unsupported']])
  assert.equal(sim.counters.requestsFailedProtocolUnsupported, 1)
  assert.ok(sim.connected(0, 1), 'the connection itself is fine')
})

test('peers that do not serve the protocol are not announced to cores, and they are told so in their requests', () => {
  const { sim, cores, request, connect, act } = setup(3, { servesProtocol: (index) => index !== 2 })
  connect(0, 1)
  connect(2, 0)
  assert.deepEqual(cores[0]!.inputsOfType('peer-connected').map(({ input }) => input.peer), ['p1'])
  assert.deepEqual(cores[2]!.inputsOfType('peer-connected').map(({ input }) => input.peer), ['p0'], 'a client still hears of servers')
  request(2, 0, 1, 'ask:a')
  sim.run(sim.now + 100)
  assert.equal(cores[0]!.inputsOfType('request')[0]?.input.remoteIsServer, false)
  assert.equal(cores[2]!.inputsOfType('response').length, 1, 'a client may still ask a server')
  act(2, { type: 'disconnect', peer: sim.idOf(0), reason: 'test' })
  act(1, { type: 'disconnect', peer: sim.idOf(0), reason: 'test' })
  sim.run(sim.now + 100)
  assert.deepEqual(cores[0]!.inputsOfType('peer-disconnected').map(({ input }) => input.peer), ['p1'])
})

test('a one-way request is reported written as soon as it has left, after the action loop', () => {
  const { sim, cores, request, connect, ends } = setup(2)
  connect(0, 1)
  const sentAt = sim.now
  request(0, 1, 1, 'ask:one-way', true)
  assert.deepEqual(ends(0), [], 'the core is not re-entered while it is being polled')
  sim.run(sentAt)
  assert.deepEqual(ends(0), [[sentAt, 1, 'written']])
  sim.run(sentAt + 1_000)
  assert.equal(cores[1]!.inputsOfType('request')[0]?.now, sentAt + LATENCY_MS)
  assert.deepEqual(ends(0), [[sentAt, 1, 'written']], 'one report per request')
  assert.equal(sim.counters.respondsDropped, 1, "the target's answer to a one-way request goes nowhere")
})

test('with finite bandwidth a one-way request is written when its last byte has left', () => {
  const { sim, request, connect, ends } = setup(2, { network: { uploadBytesPerSecond: 1e9, downloadBytesPerSecond: 1e9 } })
  sim.setCapacity(0, 1_000, 1e9)
  connect(0, 1)
  const sentAt = sim.now
  request(0, 1, 1, 'ask:one-way', true)
  sim.run(sentAt + 5_000)
  // 100 bytes at 1,000 B/s.
  assert.deepEqual(ends(0).map(([now, id, outcome]) => [Math.round(now as number), id, outcome]), [[sentAt + 100, 1, 'written']])
})

test('requests in flight fail with connection-closed when the requester hears of the close', () => {
  const { sim, cores, request, connect, act, ends } = setup(3)
  connect(0, 1)
  connect(0, 2)
  const sentAt = sim.now
  request(0, 1, 1, 'slow')
  request(0, 2, 2, 'slow')
  sim.run(sentAt + 15)
  // The target closes: the requester hears one latency later.
  act(1, { type: 'disconnect', peer: sim.idOf(0), reason: 'test' })
  // The requester closes: it knows at once, though not before its action loop is over.
  act(0, { type: 'disconnect', peer: sim.idOf(2), reason: 'test' })
  assert.deepEqual(ends(0), [])
  sim.run(sim.now + 1_000)
  assert.deepEqual(ends(0), [[sentAt + 15, 2, 'connection-closed'], [sentAt + 25, 1, 'connection-closed']])
  assert.deepEqual(cores[0]!.inputsOfType('peer-disconnected').map(({ now, input }) => [now, input.peer]), [[sentAt + 25, 'p1']])
  // The target's late answer finds no request.
  act(2, { type: 'respond', to: sim.idOf(0), id: cores[2]!.inputsOfType('request')[0]!.input.id, message: blob('late') })
  assert.equal(sim.counters.respondsDropped, 1)
  assert.equal(sim.counters.requestsFailedConnectionClosed, 2)
})

test('a graceful leave of the target fails the requests waiting on it', () => {
  const { sim, request, connect, ends } = setup(2)
  connect(0, 1)
  const sentAt = sim.now
  request(0, 1, 1, 'slow')
  sim.run(sentAt + 15)
  sim.leave(1, { crash: false })
  sim.run(sim.now + 1_000)
  assert.deepEqual(ends(0), [[sentAt + 25, 1, 'connection-closed']])
})

test('a crashed or partitioned target reports nothing: the requester times out on its own', () => {
  const { sim, request, connect, ends } = setup(3)
  connect(0, 1)
  connect(0, 2)
  const sentAt = sim.now
  request(0, 1, 1, 'ask:a')
  request(0, 2, 2, 'slow')
  sim.leave(1, { crash: true })
  sim.run(sentAt + 15)
  sim.leave(2, { crash: true })
  sim.run(sentAt + 60_000)
  assert.deepEqual(ends(0), [])
  assert.equal(sim.counters.requestsLost, 1, 'the request to the crashed peer was dropped on arrival')

  const partitioned = setup(2)
  partitioned.connect(0, 1)
  partitioned.sim.partition([0], [1])
  partitioned.request(0, 1, 1, 'ask:a')
  partitioned.sim.run(partitioned.sim.now + 60_000)
  assert.deepEqual(partitioned.ends(0), [])
  assert.equal(partitioned.sim.counters.requestsLost, 1)
})

test('connectionsPerPeerMax: a new connection makes the peer close its least recently used one', () => {
  const { sim, cores, request, connect, ends } = setup(4, { network: { connectionsPerPeerMax: 2 } })
  connect(0, 1)
  connect(0, 2)
  // A request and its response make 0–1 the more recently used.
  request(0, 1, 1, 'ask:a')
  sim.run(sim.now + 2 * LATENCY_MS)
  assert.deepEqual(ends(0).map(([, , outcome]) => outcome), ['reply:a'])
  const dialledAt = sim.now
  connect(0, 3)
  assert.ok(sim.connected(0, 1))
  assert.ok(!sim.connected(0, 2))
  assert.ok(sim.connected(0, 3))
  assert.equal(sim.connectionCountOf(0), 2)
  assert.equal(sim.counters.connectionsEvicted, 1)
  sim.run(sim.now + 100)
  // The evicting end did not ask for the close, so its core is told; the other end hears one latency later.
  assert.deepEqual(cores[0]!.inputsOfType('peer-disconnected').map(({ now, input }) => [now, input.peer]), [[dialledAt + 2 * LATENCY_MS, 'p2']])
  assert.deepEqual(cores[2]!.inputsOfType('peer-disconnected').map(({ now, input }) => [now, input.peer]), [[dialledAt + 3 * LATENCY_MS, 'p0']])
})

test('connectionsPerPeerMax applies at the dialled end too', () => {
  const { sim, cores, connect } = setup(4, { network: { connectionsPerPeerMax: 2 } })
  connect(1, 0)
  connect(2, 0)
  connect(3, 0)
  assert.equal(sim.connectionCountOf(0), 2)
  assert.ok(!sim.connected(1, 0), 'the oldest, unused connection went')
  sim.run(sim.now + 100)
  assert.deepEqual(cores[1]!.inputsOfType('peer-disconnected').map(({ input }) => input.peer), ['p0'])
})

/** A small random network under request load, with loss, finite bandwidth and evictions. */
function loadRun(seed: bigint, options: { crash: boolean }) {
  const peerCount = 60
  const ids = Array.from({ length: peerCount }, (_, index) => asPeerId(`p${index}`))
  const cores: RequestLoadCore[] = []
  const sim = new Simulator<BlobMessage>({
    peerCount,
    seed,
    sizeOf: (message) => message.bytes,
    network: { connectionsPerPeerMax: 6, lossProbability: 0.05 },
    createCore: (context) =>
      (cores[context.index] = new RequestLoadCore({ ids, self: context.index, requestCount: 40, intervalMs: 200, request: blob('ask', 60), response: blob('reply', 800) }, context.prng, 0)),
  })
  for (let index = 0; index < peerCount; index++) sim.join(index)
  if (options.crash) sim.leave(7, { crash: true, time: 3_000 })
  sim.run(120_000)
  const responseCount = cores.reduce((sum, core) => sum + core.responseCount, 0)
  const failureCount = cores.reduce((sum, core) => sum + core.failureCount, 0)
  return { sim, responseCount, failureCount }
}

test('under load with evictions, while no peer vanishes, every request ends exactly once', () => {
  // RequestLoadCore throws if a request ends twice.
  const { sim, responseCount, failureCount } = loadRun(5n, { crash: false })
  const { counters } = sim
  assert.ok(counters.connectionsEvicted > 0 && counters.retransmissions > 0, 'the run exercises evictions and loss')
  assert.ok(counters.requestsFailedConnectionClosed > 0, 'some requests met an eviction')
  assert.equal(counters.requestsSent, 60 * 40)
  assert.equal(responseCount + failureCount, counters.requestsSent)
  assert.equal(responseCount, counters.responsesDelivered)
  assert.equal(failureCount, counters.requestsFailedConnectionClosed + counters.requestsFailedDial + counters.requestsFailedProtocolUnsupported + counters.requestsFailedUnknownPeer)
})

test('the same seed gives the same trace, with requests, evictions and a crash', () => {
  const first = loadRun(5n, { crash: true })
  const second = loadRun(5n, { crash: true })
  assert.equal(first.sim.traceHash, second.sim.traceHash)
  assert.deepEqual(first.sim.counters, second.sim.counters)
  assert.notEqual(loadRun(6n, { crash: true }).sim.traceHash, first.sim.traceHash)
  assert.notEqual(loadRun(5n, { crash: false }).sim.traceHash, first.sim.traceHash)
  assert.ok(first.responseCount + first.failureCount < first.sim.counters.requestsSent, 'some requests met the crash and were never reported')
})
