import assert from 'node:assert/strict'
import { test } from 'node:test'
import { asPeerId, type Millis } from '../core/sans-io.ts'
import type { NatClass, NetworkConfig } from './network-model.ts'
import { Simulator } from './simulator.ts'
import { blobCodec, SCRIPTED_LATENCY_MS, scriptedSimulator, type BlobMessage } from './test-cores.ts'

const LATENCY_MS = SCRIPTED_LATENCY_MS

function setup(peerCount: number, options: { network?: Partial<NetworkConfig>; nat?: NatClass[] } = {}) {
  return scriptedSimulator(peerCount, options)
}

test('a dial connects both ends after one round trip, outbound and inbound', () => {
  const { sim, cores, act } = setup(2)
  act(0, { type: 'dial', peer: asPeerId('p1'), addresses: [] })
  sim.run(2 * LATENCY_MS - 0.001)
  assert.equal(cores[0]!.inputsOfType('peer-connected').length, 0)
  sim.run(2 * LATENCY_MS)
  assert.deepEqual(cores[0]!.inputsOfType('peer-connected').map(({ now, input }) => [now, input.peer, input.direction]), [[20, 'p1', 'outbound']])
  assert.deepEqual(cores[1]!.inputsOfType('peer-connected').map(({ now, input }) => [now, input.peer, input.direction]), [[20, 'p0', 'inbound']])
  assert.ok(sim.connected(0, 1))
})

test('messages on a connection arrive one latency later, in order, even behind a retransmission', () => {
  const { sim, cores, act, connect, blob } = setup(2, { network: { lossProbability: 0.5 } })
  connect(0, 1)
  const sentAt = sim.now
  for (let index = 0; index < 20; index++) act(0, { type: 'send', to: sim.idOf(1), message: blob(`m${index}`) })
  sim.run(sentAt + 60_000)
  const received = cores[1]!.inputsOfType('message')
  assert.deepEqual(received.map(({ input }) => input.message.label), Array.from({ length: 20 }, (_, index) => `m${index}`))
  assert.ok(received.every(({ now }, index) => now >= sentAt + LATENCY_MS && (index === 0 || now >= received[index - 1]!.now)))
  assert.ok(sim.counters.retransmissions > 0, 'loss shows up as retransmissions, not as lost messages')
  assert.equal(sim.counters.messagesDelivered, 20)
})

test('bandwidth: two messages from one sender share its upload; a slow receiver limits its own', () => {
  const { sim, cores, act, connect, blob } = setup(4, { network: { uploadBytesPerSecond: 1e9, downloadBytesPerSecond: 1e9 } })
  sim.setCapacity(0, 1_000, 1e9)
  sim.setCapacity(3, 1e9, 100)
  connect(0, 1)
  connect(0, 2)
  connect(1, 3)
  const start = sim.now
  act(0, { type: 'send', to: sim.idOf(1), message: blob('a', 1_000) })
  act(0, { type: 'send', to: sim.idOf(2), message: blob('b', 1_000) })
  act(1, { type: 'send', to: sim.idOf(3), message: blob('c', 100) })
  sim.run(start + 10_000)
  const arrival = (peer: number) => Math.round(cores[peer]!.inputsOfType('message')[0]!.now - start)
  // 1,000 bytes at 500 B/s each, plus the latency.
  assert.equal(arrival(1), 2_000 + LATENCY_MS)
  assert.equal(arrival(2), 2_000 + LATENCY_MS)
  // 100 bytes through a 100 B/s downlink.
  assert.equal(arrival(3), 1_000 + LATENCY_MS)
})

test('serialized streams: a connection sends one message at a time and takes one share; small messages go express, in order', () => {
  const { sim, cores, act, connect, blob } = setup(3, { network: { uploadBytesPerSecond: 1e9, downloadBytesPerSecond: 1e9, streamsSerialized: true, expressBytesMax: 100, frameOverheadBytes: 0 } })
  sim.setCapacity(0, 1_000, 1e9)
  connect(0, 1)
  connect(0, 2)
  const start = sim.now
  // Two messages to p1 queue on one stream; the stream to p2 gets the other half of p0's uplink.
  act(0, { type: 'send', to: sim.idOf(1), message: blob('a', 1_000) })
  act(0, { type: 'send', to: sim.idOf(1), message: blob('b', 1_000) })
  act(0, { type: 'send', to: sim.idOf(1), message: blob('tiny-behind', 10) })
  act(0, { type: 'send', to: sim.idOf(2), message: blob('c', 2_000) })
  sim.run(start + 1)
  // Nothing is queued towards p2 any more... until this express message, which waits behind c.
  act(0, { type: 'send', to: sim.idOf(2), message: blob('tiny-queued', 10) })
  sim.run(start + 20_000)
  const arrivals = (peer: number) => cores[peer]!.inputsOfType('message').map(({ now, input }) => [input.message.label, Math.round(now - start)])
  // a: 1,000 bytes at 500 B/s; b the same after it; the tiny one right behind b.
  assert.deepEqual(arrivals(1), [['a', 2_000 + LATENCY_MS], ['b', 4_000 + LATENCY_MS], ['tiny-behind', 4_000 + LATENCY_MS]])
  assert.deepEqual(arrivals(2), [['c', 4_000 + LATENCY_MS], ['tiny-queued', 4_000 + LATENCY_MS]])
  // An express message on an idle stream arrives one latency later, whatever p0's uplink carries.
  const busyAt = sim.now
  act(0, { type: 'send', to: sim.idOf(1), message: blob('d', 1_000) })
  act(0, { type: 'send', to: sim.idOf(2), message: blob('tiny-idle', 10) })
  sim.run(busyAt + 5_000)
  assert.deepEqual(arrivals(2).at(-1), ['tiny-idle', Math.round(busyAt - start) + LATENCY_MS])
  assert.equal(sim.counters.messagesDelivered, 7)
})

test('a partition drops messages silently and fails dials; the connection stays open; heal restores both', () => {
  const { sim, cores, act, connect, blob } = setup(3)
  connect(0, 1)
  sim.partition([0], [1, 2])
  act(0, { type: 'send', to: sim.idOf(1), message: blob('lost') })
  act(0, { type: 'dial', peer: sim.idOf(2), addresses: [] })
  const dialedAt = sim.now
  sim.run(sim.now + 20_000)
  assert.equal(cores[1]!.inputsOfType('message').length, 0)
  assert.equal(cores[1]!.inputsOfType('peer-disconnected').length, 0, 'nobody is told about the partition')
  assert.equal(sim.counters.messagesDroppedPartition, 1)
  assert.ok(sim.connected(0, 1))
  const [failed] = cores[0]!.inputsOfType('dial-failed')
  assert.equal(failed?.now, dialedAt + sim.network.dialTimeoutMs)
  sim.heal()
  act(0, { type: 'send', to: sim.idOf(1), message: blob('after-heal') })
  connect(0, 2)
  sim.run(sim.now + 100)
  assert.deepEqual(cores[1]!.inputsOfType('message').map(({ input }) => input.message.label), ['after-heal'])
  assert.ok(sim.connected(0, 2))
})

test('NAT classes: anyone dials a public peer, nobody an unreachable one, a NATed one only by hole punching', () => {
  const outcome = (holePunchProbability: number, dialer: number, target: number): string => {
    const { sim, cores, act } = setup(3, { nat: ['public', 'nat', 'unreachable'], network: { holePunchProbability } })
    act(dialer, { type: 'dial', peer: sim.idOf(target), addresses: [] })
    sim.run(sim.now + 20_000)
    if (cores[dialer]!.inputsOfType('peer-connected').length === 1) return 'connected'
    return cores[dialer]!.inputsOfType('dial-failed').map(({ input }) => input.reason).join()
  }
  assert.equal(outcome(0, 1, 0), 'connected', 'nat dials out to public')
  assert.equal(outcome(0, 2, 0), 'connected', 'unreachable dials out to public')
  assert.equal(outcome(0, 0, 1), 'timeout', 'nobody dials into a nat without hole punching')
  assert.equal(outcome(1, 0, 1), 'connected', 'hole punching lets a dial into a nat through')
  assert.equal(outcome(1, 0, 2), 'timeout', 'nobody dials an unreachable peer')
})

test('disconnect tells the remote one latency later; a graceful leave closes connections; a crash closes nothing', () => {
  const { sim, cores, act, connect } = setup(4)
  connect(0, 1)
  connect(0, 2)
  connect(0, 3)
  act(0, { type: 'disconnect', peer: sim.idOf(1), reason: 'test' })
  const closedAt = sim.now
  sim.run(sim.now + 100)
  assert.deepEqual(cores[1]!.inputsOfType('peer-disconnected').map(({ now }) => now), [closedAt + LATENCY_MS])
  assert.ok(!sim.connected(0, 1))
  sim.leave(2, { crash: true })
  sim.run(sim.now + 100)
  assert.equal(cores[0]!.inputsOfType('peer-disconnected').length, 0, 'a crash sends no goodbye')
  assert.equal(sim.deadConnectionCount, 1)
  act(0, { type: 'disconnect', peer: sim.idOf(2), reason: 'ping-timeout' })
  assert.equal(sim.deadPeerDetectionDelaysMs.length, 1)
  assert.equal(sim.deadConnectionCount, 0)
  sim.leave(0, { crash: false })
  sim.run(sim.now + 100)
  assert.equal(cores[3]!.inputsOfType('peer-disconnected').length, 1, 'a graceful leave says goodbye')
  assert.equal(sim.onlineCount, 2)
})

test('one pending tick per peer: it comes at the deadline, and a moved deadline replaces it', () => {
  const ticks: Millis[] = []
  let deadline: Millis | undefined = 100
  const sim = new Simulator<BlobMessage>({
    peerCount: 1,
    seed: 1n,
    codec: blobCodec,
    createCore: () => ({
      handle: (now, input) => {
        if (input.type !== 'tick') return
        ticks.push(now)
        deadline = now >= 300 ? undefined : now === 100 ? 500 : deadline
      },
      poll: () => undefined,
      nextDeadline: () => deadline,
    }),
  })
  sim.join(0)
  sim.run(0)
  sim.run(120)
  // The core moves its deadline earlier after an input; the pending 500 ms tick is replaced.
  deadline = 300
  sim.input(0, { type: 'peer-disconnected', peer: asPeerId('nobody') })
  sim.run(10_000)
  assert.deepEqual(ticks, [0, 100, 300])
})
