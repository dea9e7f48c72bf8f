import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { test } from 'node:test'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { Libp2p, Stream } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { MEMBERSHIP_PROTOCOL } from '../core/membership/membership.ts'
import { asPeerId, type Core, type Direction, type Millis, type NetworkAction, type NetworkInput, type PeerId, type WireCodec } from '../core/sans-io.ts'
import { introduce, type MembershipNode, membershipNode, testLibp2p, waitFor } from '../testing/libp2p.ts'
import { onCleanup } from '../testing/temp.ts'
import { encodeMembership } from '../wire/membership.ts'
import { encodeFrame } from './frames.ts'
import { ProtocolDriver } from './protocol-driver.ts'
import { CountingProtocolMetrics } from './protocol-metrics.ts'

function alive(node: MembershipNode, from: PeerId): number {
  return node.events.filter((event) => event.type === 'peer-alive' && event.peer === from).length
}

/** Two membership nodes, `a` dialled `b` and both have seen a pong. */
async function connectedPair(t: Parameters<typeof membershipNode>[0]): Promise<[MembershipNode, MembershipNode]> {
  const a = await membershipNode(t)
  const b = await membershipNode(t)
  introduce(a, b)
  await waitFor(() => alive(a, b.peer) > 0 && alive(b, a.peer) > 0, 'pings answered both ways')
  return [a, b]
}

/** No frame the driver refused to send for being too large: that would be a bug in the core. */
function assertNoCoreBugs(...nodes: MembershipNode[]): void {
  for (const node of nodes) assert.equal(node.metrics.count('dropped', 'frame-too-large'), 0, JSON.stringify(node.metrics.snapshot()))
}

async function rawStream(raw: Libp2p, to: MembershipNode): Promise<Stream> {
  const connection = await raw.dial(to.libp2p.getMultiaddrs())
  return connection.newStream(MEMBERSHIP_PROTOCOL)
}

async function streamEnded(stream: Stream): Promise<void> {
  await waitFor(() => stream.status !== 'open', `stream still ${stream.status}`)
}

test('two nodes connect, pings and pongs flow, peer-alive reports a round trip', async (t) => {
  const [a, b] = await connectedPair(t)
  const event = a.events.find((candidate) => candidate.type === 'peer-alive')
  assert.ok(event?.type === 'peer-alive' && event.peer === b.peer)
  assert.ok(event.rttMs >= 0 && event.rttMs < 1_000, `rtt ${event.rttMs}`)
  assert.deepEqual(event.addresses.map((address) => `${address}/p2p/${b.peer}`), b.addresses, 'addresses come from the peer store')
  assert.equal(a.driver.connectedCount, 1)
  assert.equal(a.membership.connectedCount, 1)
  // One long-lived stream each way: later pings reuse it.
  await waitFor(() => alive(a, b.peer) >= 3, 'more pongs')
  assert.equal(a.metrics.count('streamsOpened', 'outbound'), 1)
  assert.equal(a.metrics.count('streamsOpened', 'inbound'), 1)
  assert.equal(a.metrics.count('rejected'), 0)
  assert.equal(a.metrics.count('dropped'), 0)
  assert.ok(a.metrics.count('framesReceived') >= 3)
  assertNoCoreBugs(a, b)
})

test('peer exchange: a dials c, which it only learnt about from b', async (t) => {
  const [b, c] = await connectedPair(t)
  const a = await membershipNode(t)
  introduce(a, b)
  await waitFor(() => a.membership.connectedPeers().includes(c.peer), () => `a is connected to ${a.membership.connectedPeers().join(', ')}`)
  assert.ok(a.membership.counters.peersLearnt >= 2, 'b from bootstrap, c from the exchange')
  await waitFor(() => alive(a, c.peer) > 0, 'c answers a')
  assertNoCoreBugs(a, b, c)
})

test('a malformed frame aborts only that stream, is counted, and others are still served', async (t) => {
  const [a, b] = await connectedPair(t)
  const raw = await testLibp2p(t)

  const malformed = await rawStream(raw, a)
  malformed.send(encodeFrame(new Uint8Array([0xff, 0xff, 0xff])))
  await streamEnded(malformed)
  assert.equal(a.metrics.count('rejected', 'malformed'), 1, JSON.stringify(a.metrics.snapshot()))

  const empty = await rawStream(raw, a)
  empty.send(encodeFrame(new Uint8Array(0)))
  await streamEnded(empty)
  assert.equal(a.metrics.count('rejected', 'empty-frame'), 1)

  const badPrefix = await rawStream(raw, a)
  badPrefix.send(new Uint8Array([0x81, 0x00]))
  await streamEnded(badPrefix)
  assert.equal(a.metrics.count('rejected', 'bad-length-prefix'), 1)

  // Only the prefix is sent: the stream ends without the driver waiting for a body.
  const oversize = await rawStream(raw, a)
  oversize.send(new Uint8Array([0x80, 0x80, 0x40]))
  await streamEnded(oversize)
  assert.equal(a.metrics.count('rejected', 'frame-too-large'), 1)

  // A valid frame before garbage on the same stream is still delivered.
  const before = a.metrics.count('framesReceived')
  const mixed = await rawStream(raw, a)
  mixed.send(new Uint8Array([...encodeFrame(encodeMembership({ type: 'ping', nonce: 1 })), 0x81, 0x00]))
  await streamEnded(mixed)
  assert.ok(a.metrics.count('framesReceived') >= before + 1, 'the ping before the garbage was read')

  const pongs = alive(b, a.peer)
  await waitFor(() => alive(b, a.peer) >= pongs + 2, 'b is still answered')
  assert.ok(a.driver.inboundStreamCount <= 1, 'only b\'s stream is held')
  assertNoCoreBugs(a, b)
})

test('a peer opening thousands of streams: one is held, the rest replaced or refused, and it is hung up', async (t) => {
  const [a, b] = await connectedPair(t)
  const raw = await testLibp2p(t)
  const connection = await raw.dial(a.libp2p.getMultiaddrs())
  // Streams that arrive before a's end of the connection is set up are libp2p's business:
  // past 10 it closes the connection (MaxEarlyStreamsError). The flood for the driver comes after.
  await waitFor(() => a.libp2p.getConnections(raw.peerId).length > 0, 'a has the connection')
  let opened = 0
  let failed = 0
  for (let batch = 0; batch < 40; batch++) {
    const results = await Promise.allSettled(Array.from({ length: 50 }, () => connection.newStream(MEMBERSHIP_PROTOCOL)))
    for (const result of results) result.status === 'fulfilled' ? opened++ : failed++
  }
  assert.equal(opened + failed, 2_000)
  await waitFor(() => a.metrics.count('disconnected', 'stream-churn') === 1, () => JSON.stringify(a.metrics.snapshot()))
  await waitFor(() => connection.status !== 'open', 'the churning peer is hung up')
  assert.ok(a.metrics.count('rejected', 'stream-replaced') >= 1, JSON.stringify(a.metrics.snapshot()))
  assert.ok(a.metrics.count('rejected', 'stream-churn') >= 1)
  assert.ok(a.metrics.count('streamsOpened', 'inbound') <= 1 + 16, 'at most the window allowance was ever held')
  assert.ok(a.metrics.count('streamsOpen', 'inbound') <= 1, 'only b\'s stream is held')
  const pongs = alive(b, a.peer)
  await waitFor(() => alive(b, a.peer) >= pongs + 2, 'b is still answered')
  assertNoCoreBugs(a, b)
})

test('a peer that connects and hangs up again and again leaves nothing behind', async (t) => {
  const [a, b] = await connectedPair(t)
  const flapper = await testLibp2p(t)
  // It speaks the protocol (identify says so), so each connection reaches the core.
  await flapper.handle(MEMBERSHIP_PROTOCOL, () => {})
  const flapperPeer = asPeerId(flapper.peerId.toString())
  let connectedSeen = 0
  let refused = 0
  for (let round = 0; round < 30; round++) {
    try {
      await flapper.dial(a.libp2p.getMultiaddrs())
    } catch {
      // libp2p's connection manager refuses a host past inboundConnectionThreshold a second.
      refused++
      continue
    }
    await waitFor(() => a.membership.connectedPeers().includes(flapperPeer), 'the core sees the flapper')
    connectedSeen++
    await flapper.hangUp(a.libp2p.peerId)
  }
  assert.ok(connectedSeen >= 5, `${connectedSeen} connections, ${refused} refused`)
  await waitFor(() => a.driver.connectedCount === 1 && a.membership.connectedCount === 1, () => `${a.driver.connectedCount} connected`)
  assert.equal(a.driver.queuedBytes(flapperPeer), 0)
  await waitFor(() => a.metrics.count('streamsOpen', 'outbound') === 1 && a.metrics.count('streamsOpen', 'inbound') <= 1, () => JSON.stringify(a.metrics.snapshot()))
  const pongs = alive(b, a.peer)
  await waitFor(() => alive(b, a.peer) >= pongs + 2, 'b is still answered')
  assertNoCoreBugs(a, b)
})

// --- backpressure, with a codec of large frames and a core that sends on command ---------

const BLOB_PROTOCOL = '/shoal/test-blob/1.0.0'
const BLOB_FRAME_BYTES_MAX = 64 * 1024

const blobCodec: WireCodec<Uint8Array> = {
  protocol: BLOB_PROTOCOL,
  frameBytesMax: BLOB_FRAME_BYTES_MAX,
  encode: (message) => message,
  decode: (bytes) => ({ ok: true, value: bytes }),
}

type BlastInput = NetworkInput<Uint8Array> | { type: 'blast'; to: PeerId; count: number; bytes: number }

/** Sends `count` frames of `bytes` on command; ignores the network. */
class BlastCore implements Core<BlastInput, NetworkAction<Uint8Array>> {
  readonly #actions: Array<NetworkAction<Uint8Array>> = []
  handle(_now: Millis, input: BlastInput): void {
    if (input.type !== 'blast') return
    for (let index = 0; index < input.count; index++) this.#actions.push({ type: 'send', to: input.to, message: new Uint8Array(input.bytes) })
  }
  poll(): NetworkAction<Uint8Array> | undefined {
    return this.#actions.shift()
  }
  nextDeadline(): Millis | undefined {
    return undefined
  }
}

test('a peer that does not read: the queue stays bounded, drops are counted, and it drains when the peer reads', async (t) => {
  const receiver = await testLibp2p(t)
  let held: Stream | undefined
  let receivedBytes = 0
  await receiver.handle(BLOB_PROTOCOL, (stream) => {
    held = stream
    stream.pause()
  })
  const sender = await testLibp2p(t)
  const metrics = new CountingProtocolMetrics()
  const driver = new ProtocolDriver({ libp2p: sender, codec: blobCodec, core: new BlastCore(), now: () => performance.now(), onAction: () => {}, metrics })
  await driver.start()
  t.after(() => driver.stop())
  await sender.dial(receiver.getMultiaddrs())
  const to = asPeerId(receiver.peerId.toString())
  const sendQueueBytesMax = 4 * BLOB_FRAME_BYTES_MAX
  const frameBytes = 60_000
  const frameCount = 200

  driver.input({ type: 'blast', to, count: frameCount, bytes: frameBytes })
  await waitFor(() => held !== undefined && metrics.count('framesSent') > 0, 'the stream is open')
  await new Promise((resolve) => setTimeout(resolve, 200))
  assert.ok(driver.queuedBytes(to) <= sendQueueBytesMax, `${driver.queuedBytes(to)} bytes queued`)
  assert.ok(metrics.count('dropped', 'send-queue-full') > 0)
  const sentFrames = metrics.count('framesSent')
  const queuedFrames = driver.queuedBytes(to) / (frameBytes + 3)
  assert.equal(sentFrames + queuedFrames + metrics.count('dropped', 'send-queue-full'), frameCount)
  // Yamux's window (256 KiB) and our queue bound what is in memory, not the 12 MB asked for.
  assert.ok(sentFrames * frameBytes < 1024 * 1024, `${sentFrames} frames handed to the stream`)

  held!.addEventListener('message', (event) => {
    receivedBytes += event.data.byteLength
  })
  held!.resume()
  await waitFor(() => driver.queuedBytes(to) === 0, 'the queue drains')
  await waitFor(() => receivedBytes === metrics.count('bytesSent'), () => `received ${receivedBytes} of ${metrics.count('bytesSent')}`)
  assert.equal(metrics.count('framesSent'), frameCount - metrics.count('dropped', 'send-queue-full'))
})

test('dial-failed for an unreachable address, a bad address and a peer without the protocol', async (t) => {
  const a = await membershipNode(t, { limits: { identifyTimeoutMs: 3_000 } })
  const unreachable = asPeerId(peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString())
  const badAddress = asPeerId(peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString())
  const raw = await testLibp2p(t)
  const noProtocol = asPeerId(raw.peerId.toString())

  introduce(a, { peer: unreachable, addresses: ['/ip4/127.0.0.1/tcp/1'] })
  introduce(a, { peer: badAddress, addresses: ['not a multiaddr'] })
  introduce(a, { peer: noProtocol, addresses: raw.getMultiaddrs().map((address) => address.toString()) })
  introduce(a, { peer: asPeerId('not-a-peer-id'), addresses: [] })
  await waitFor(() => a.metrics.count('dialFailed', 'unreachable') >= 1 && a.metrics.count('dialFailed', 'no-addresses') >= 1 &&
    a.metrics.count('dialFailed', 'protocol-unsupported') >= 1 && a.metrics.count('dialFailed', 'bad-peer-id') >= 1, () => JSON.stringify(a.metrics.snapshot()))
  assert.ok(a.membership.counters.dialFailures >= 4)
  assert.equal(a.membership.connectedCount, 0)
  assert.equal(a.metrics.count('dialFailed', 'identify-timeout'), 0, 'identify said it at once')
})

test('a core whose deadline stays in the past is ticked once a second, not in a spin', async (t) => {
  let ticks = 0
  const stuck: Core<BlastInput, NetworkAction<Uint8Array>> = {
    handle: (_now, input) => {
      if (input.type === 'tick') ticks++
    },
    poll: () => undefined,
    nextDeadline: () => 0,
  }
  const driver = new ProtocolDriver({ libp2p: await testLibp2p(t), codec: blobCodec, core: stuck, now: () => performance.now(), onAction: () => {}, metrics: new CountingProtocolMetrics() })
  await driver.start()
  t.after(() => driver.stop())
  await new Promise((resolve) => setTimeout(resolve, 1_500))
  assert.ok(ticks >= 1 && ticks <= 3, `${ticks} ticks in 1.5 s`)
})

test('stop() clears the timer, closes streams and ignores what comes after', async (t) => {
  const [a, b] = await connectedPair(t)
  assert.ok(a.driver.timerDeadline !== undefined)
  await a.driver.stop()
  assert.equal(a.driver.timerDeadline, undefined)
  assert.equal(a.driver.inboundStreamCount, 0)
  await waitFor(() => a.metrics.count('streamsOpen', 'outbound') === 0 && a.metrics.count('streamsOpen', 'inbound') === 0, () => JSON.stringify(a.metrics.snapshot()))
  // b saw a's streams close gracefully and keeps working on its own.
  await waitFor(() => b.metrics.count('streamsOpen', 'inbound') === 0, () => JSON.stringify(b.metrics.snapshot()))
  assert.equal(b.metrics.count('rejected'), 0)
  a.driver.input({ type: 'peer-discovered', peer: b.peer, addresses: [], source: 'bootstrap' })
  assert.equal(a.driver.timerDeadline, undefined)
})

test('a process that stops its drivers and nodes exits on its own', async () => {
  const fixture = fileURLToPath(new URL('../testing/protocol-driver-exit.js', import.meta.url))
  const started = Date.now()
  const { code, stdout } = await new Promise<{ code: number | null; stdout: string }>((resolve) => {
    const child = execFile(process.execPath, [fixture], { timeout: 8_000 }, (error, out) => resolve({ code: error === null ? 0 : (error.code as number | null) ?? null, stdout: out }))
    child.stdin?.end()
  })
  assert.equal(code, 0, `exit code ${code}; output: ${stdout}`)
  assert.match(stdout, /pongs \d+/)
  assert.ok(Date.now() - started < 8_000)
})

// --- several ids of one protocol, with a core that acts on command and records its inputs ---

const ECHO_V2 = '/shoal/test-echo/2.0.0'
const ECHO_V1 = '/shoal/test-echo/1.0.0'

function echoCodec(protocol: string, fallbackProtocols?: readonly string[]): WireCodec<string> {
  return {
    protocol,
    ...(fallbackProtocols === undefined ? {} : { fallbackProtocols }),
    frameBytesMax: 1024,
    encode: (message) => new TextEncoder().encode(message),
    decode: (bytes) => ({ ok: true, value: new TextDecoder().decode(bytes) }),
  }
}

type CommandInput = NetworkInput<string> | { type: 'command'; action: NetworkAction<string> }

/** Records every network input and carries out the actions it is handed. */
class RecordingCore implements Core<CommandInput, NetworkAction<string>> {
  readonly inputs: Array<NetworkInput<string>> = []
  readonly #actions: Array<NetworkAction<string>> = []
  handle(_now: Millis, input: CommandInput): void {
    if (input.type === 'command') this.#actions.push(input.action)
    else if (input.type !== 'tick') this.inputs.push(input)
  }
  poll(): NetworkAction<string> | undefined {
    return this.#actions.shift()
  }
  nextDeadline(): Millis | undefined {
    return undefined
  }
  connected(peer: PeerId): Extract<NetworkInput<string>, { type: 'peer-connected' }> | undefined {
    return this.inputs.find((input) => input.type === 'peer-connected' && input.peer === peer) as Extract<NetworkInput<string>, { type: 'peer-connected' }> | undefined
  }
  received(from: PeerId): string[] {
    return this.inputs.flatMap((input) => input.type === 'message' && input.from === from ? [input.message] : [])
  }
}

/** Counts like CountingProtocolMetrics and remembers the protocol labels it was given. */
class LabelRecordingMetrics extends CountingProtocolMetrics {
  readonly labels = new Set<string>()
  override frameSent(protocol: string, bytes: number, relayed: boolean): void {
    this.labels.add(protocol)
    super.frameSent(protocol, bytes, relayed)
  }
  override frameReceived(protocol: string, bytes: number, relayed: boolean): void {
    this.labels.add(protocol)
    super.frameReceived(protocol, bytes, relayed)
  }
  override streamOpened(protocol: string, direction: Direction): void {
    this.labels.add(protocol)
    super.streamOpened(protocol, direction)
  }
}

interface EchoNode {
  libp2p: Libp2p
  peer: PeerId
  addresses: string[]
  core: RecordingCore
  driver: ProtocolDriver<string, CommandInput, NetworkAction<string>>
  metrics: LabelRecordingMetrics
}

async function echoNode(t: Parameters<typeof testLibp2p>[0], codec: WireCodec<string>): Promise<EchoNode> {
  const libp2p = await testLibp2p(t)
  const core = new RecordingCore()
  const metrics = new LabelRecordingMetrics()
  const driver = new ProtocolDriver({ libp2p, codec, core, now: () => performance.now(), onAction: () => {}, metrics })
  await driver.start()
  if (t !== undefined) onCleanup(t, () => driver.stop())
  const addresses = libp2p.getMultiaddrs().map((address) => address.toString())
  return { libp2p, peer: asPeerId(libp2p.peerId.toString()), addresses, core, driver, metrics }
}

function command(node: EchoNode, action: NetworkAction<string>): void {
  node.driver.input({ type: 'command', action })
}

/** The ids negotiated by the echo streams `node` has open to `to` (identify's may be open too). */
function streamProtocols(node: EchoNode, to: EchoNode): string[] {
  return node.libp2p.getConnections(to.libp2p.peerId)
    .flatMap((connection) => connection.streams.map((stream) => stream.protocol))
    .filter((protocol) => protocol === ECHO_V2 || protocol === ECHO_V1)
}

/** `a` dials `b` through its core, then each sends the other a message. */
async function exchange(a: EchoNode, b: EchoNode): Promise<void> {
  command(a, { type: 'dial', peer: b.peer, addresses: b.addresses })
  await waitFor(() => a.core.connected(b.peer) !== undefined && b.core.connected(a.peer) !== undefined, () => `a heard ${JSON.stringify(a.core.inputs)}, b heard ${JSON.stringify(b.core.inputs)}`)
  command(a, { type: 'send', to: b.peer, message: 'from a' })
  command(b, { type: 'send', to: a.peer, message: 'from b' })
  await waitFor(() => b.core.received(a.peer).length === 1 && a.core.received(b.peer).length === 1, () => `a ${JSON.stringify(a.metrics.snapshot())}, b ${JSON.stringify(b.metrics.snapshot())}`)
  assert.deepEqual(b.core.received(a.peer), ['from a'])
  assert.deepEqual(a.core.received(b.peer), ['from b'])
}

test('a driver with fallback ids reaches a peer that speaks only an older id, and learns which it speaks', async (t) => {
  const a = await echoNode(t, echoCodec(ECHO_V2, [ECHO_V1]))
  const b = await echoNode(t, echoCodec(ECHO_V1))
  assert.deepEqual(a.driver.protocols, [ECHO_V2, ECHO_V1])
  await exchange(a, b)
  assert.equal(a.core.connected(b.peer)?.protocol, ECHO_V1)
  // b's codec has no fallbacks: its core sees peer-connected as it always did.
  assert.ok(!('protocol' in b.core.connected(a.peer)!), JSON.stringify(b.core.connected(a.peer)))
  assert.equal(a.metrics.count('dialFailed'), 0, 'identify listing only the older id is no protocol-unsupported')
  assert.deepEqual(streamProtocols(a, b), [ECHO_V1, ECHO_V1], 'both streams negotiated the older id')
  // Metrics keep the codec's own id as their label whichever id the streams speak.
  assert.deepEqual([...a.metrics.labels], [ECHO_V2])
  assert.deepEqual([...b.metrics.labels], [ECHO_V1])
})

test('two drivers with the same ids speak the newest', async (t) => {
  const a = await echoNode(t, echoCodec(ECHO_V2, [ECHO_V1]))
  const b = await echoNode(t, echoCodec(ECHO_V2, [ECHO_V1]))
  await exchange(a, b)
  assert.equal(a.core.connected(b.peer)?.protocol, ECHO_V2)
  assert.equal(b.core.connected(a.peer)?.protocol, ECHO_V2)
  assert.equal(a.core.inputs.filter((input) => input.type === 'peer-connected').length, 1, 'one topology per id, one peer-connected')
  assert.deepEqual(streamProtocols(a, b), [ECHO_V2, ECHO_V2])
})

test('a peer that stops speaking an id: nothing changes unless the core knew it by that id, then it is reported again with the other', async (t) => {
  const a = await echoNode(t, echoCodec(ECHO_V2, [ECHO_V1]))
  const remote = await testLibp2p(t)
  await remote.handle([ECHO_V2, ECHO_V1], () => {})
  const remotePeer = asPeerId(remote.peerId.toString())
  let identifies = 0
  a.libp2p.addEventListener('peer:identify', (event) => {
    if (event.detail.peerId.equals(remote.peerId)) identifies++
  })
  /** Changes what the remote serves and waits for identify-push to tell `a`. */
  const change = async (serve: (libp2p: Libp2p) => Promise<void>): Promise<void> => {
    const before = identifies
    await serve(remote)
    await waitFor(() => identifies > before, 'identify-push reaches a')
  }
  await remote.dial(a.libp2p.getMultiaddrs())
  await waitFor(() => a.core.connected(remotePeer) !== undefined, 'a hears of the remote')
  assert.equal(a.core.connected(remotePeer)?.protocol, ECHO_V2)

  // The older id goes and comes back: the core knows the peer by the newer one throughout.
  await change((libp2p) => libp2p.unhandle(ECHO_V1))
  await change((libp2p) => libp2p.handle(ECHO_V1, () => {}))
  assert.deepEqual(a.core.inputs.map((input) => input.type), ['peer-connected'])

  // The newer id goes: the peer still speaks the older one, and the core is told so.
  await change((libp2p) => libp2p.unhandle(ECHO_V2))
  await waitFor(() => a.core.inputs.length === 3, () => JSON.stringify(a.core.inputs))
  assert.deepEqual(a.core.inputs.map((input) => input.type), ['peer-connected', 'peer-disconnected', 'peer-connected'])
  assert.equal(a.core.inputs[2]?.type === 'peer-connected' && a.core.inputs[2].protocol, ECHO_V1)
  assert.equal(a.driver.connectedCount, 1)

  // The last id goes: the peer is gone for the core.
  await change((libp2p) => libp2p.unhandle(ECHO_V1))
  await waitFor(() => a.core.inputs.length === 4, () => JSON.stringify(a.core.inputs))
  assert.equal(a.core.inputs[3]?.type, 'peer-disconnected')
  assert.equal(a.driver.connectedCount, 0)
})
