import assert from 'node:assert/strict'
import { test } from 'node:test'
import { noise } from '@chainsafe/libp2p-noise'
import { generateKeyPair, publicKeyToProtobuf } from '@libp2p/crypto/keys'
import type { Connection, Libp2p } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { tcp } from '@libp2p/tcp'
import { yamux } from '@libp2p/yamux'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'
import { connectThroughNat } from '../testing/nat-connect.ts'
import { NatTestbed, natTestbedUnavailable } from '../testing/nat-testbed.ts'
import { waitFor } from '../testing/libp2p.ts'
import { FLOOD_HOST_LIMITS, floodReservations, loopbackRelay, reserve, reservingClient } from '../testing/relay-flood.ts'
import { onCleanup, type HasAfter } from '../testing/temp.ts'
import { SHOAL_AGENT_VERSION } from '../version.ts'
import { createHost, hostInternals, NAT_TRAVERSAL_OFF, type AddressRejection, type NatOptions, type ShoalHost } from './host.ts'
import { NatTraversal, reachabilityOf, webRtcAddressThrough } from './nat-traversal.ts'

/** The full 1,000: npm run bench:relay-flood. */
const RELAY_FLOOD_ATTEMPTS = 150

const address = (text: string, verified: boolean) => ({ multiaddr: multiaddr(text), verified })

test('reachability: public once a public address is verified, private with none, unknown while AutoNAT checks', () => {
  assert.equal(reachabilityOf([address('/ip4/10.0.1.2/tcp/4001', true), address('/ip4/127.0.0.1/tcp/4001', true)]), 'private')
  assert.equal(reachabilityOf([address('/ip4/10.0.1.2/tcp/4001', true), address('/ip4/11.0.1.2/tcp/4001', false)]), 'unknown')
  assert.equal(reachabilityOf([address('/ip4/11.0.1.2/tcp/4001', true)]), 'public')
  assert.equal(reachabilityOf([address('/dns4/shoal.example/tcp/4001', true)]), 'public')
  // A relayed address starts with the relay's public IP, and says nothing about ours.
  assert.equal(reachabilityOf([address('/ip4/11.0.0.10/tcp/4001/p2p/12D3KooWCwithWR4qvuXXsxgUkLR7d3HHNq8UU1Zi5QVYubcxMVK/p2p-circuit', true)]), 'private')
  assert.equal(reachabilityOf([]), 'private')
})

test('the WebRTC address of a relayed connection goes through the same relay', async () => {
  const peer = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
  const relay = '/ip4/11.0.0.10/tcp/4001/p2p/12D3KooWCwithWR4qvuXXsxgUkLR7d3HHNq8UU1Zi5QVYubcxMVK'
  assert.equal(webRtcAddressThrough(multiaddr(`${relay}/p2p-circuit/p2p/${peer}`), peer)?.toString(), `${relay}/p2p-circuit/webrtc/p2p/${peer}`)
  assert.equal(webRtcAddressThrough(multiaddr(`/ip4/11.0.0.10/tcp/4001/p2p/${peer}`), peer), undefined)
})

// Real daemons behind real NATs (testbed/nat-topology.sh): a cone pair, which must end
// direct, and a symmetric pair, which must stay relayed and stay up, dialled by its peer id
// alone (the DHT lookup ends at the relay, which names its connected clients). The whole
// matrix: npm run test:nat.
const unavailable = await natTestbedUnavailable()
for (const [first, second, direct, by] of [['portrestricted', 'portrestricted', true, 'address'], ['symmetric', 'symmetric', false, 'peer-id']] as const) {
  test(`through NATs: ${first}–${second}, dialled by its ${by === 'address' ? 'relayed address' : 'peer id'}, connects through the relay${direct ? ' and upgrades to a direct connection' : ' and stays relayed'}`, { skip: unavailable, timeout: 120_000 }, async () => {
    const testbed = await NatTestbed.up(first, second)
    try {
      const row = await connectThroughNat(testbed, by)
      assert.equal(row.error, undefined)
      assert.ok(row.connected && row.relayedAtStart, `connected through the relay: ${JSON.stringify(row)}`)
      assert.notEqual(row.firstByteMs, null, 'a ping answered on the relayed connection')
      assert.ok(row.alive, 'the connection still stands')
      assert.equal(row.directAtEnd, direct, `direct at the end: ${JSON.stringify(row)}`)
      if (direct) assert.ok(row.upgradeMs !== null && row.upgradeMs < 5_000, `upgraded within the wait: ${row.upgradeMs} ms`)
    } finally {
      await testbed.down()
    }
  })
}

test('a relay holds its limits under a reservation flood from one host, and still serves a peer from another', { timeout: 120_000 }, async () => {
  const result = await floodReservations(RELAY_FLOOD_ATTEMPTS)
  assert.ok(result.floodReservations <= FLOOD_HOST_LIMITS.relayReservationsPerIpMax, `reservations held for the flooding IP: ${result.floodReservations}`)
  assert.ok(result.floodReservations >= 1, 'the first peers from that IP did get reservations')
  const refused = Object.values(result.refusals).reduce((sum, count) => sum + count, 0)
  assert.ok(refused >= RELAY_FLOOD_ATTEMPTS - 2 * FLOOD_HOST_LIMITS.relayReservationsPerIpMax - 10 * result.seconds - 10, `refusals counted: ${JSON.stringify(result.refusals)} in ${result.seconds.toFixed(1)} s`)
  assert.ok((result.refusals['relay-reservations-per-ip'] ?? 0) > 0, `the per-IP reservation cap refused some: ${JSON.stringify(result.refusals)}`)
  assert.ok(result.wellBehavedReserved, 'a peer from another IP gets a reservation after the flood')
  assert.ok(result.wellBehavedReached, 'and is reached through the relay')
})

const ECHO_PROTOCOL = '/shoal-test/echo/1'
const PING_PROTOCOL = '/ipfs/ping/1.0.0'

/** Sends `bytes` on a new stream of `connection` and resolves with as many bytes echoed back, or rejects if the stream closes first. */
async function echo(connection: Connection, protocol: string, bytes: Uint8Array): Promise<void> {
  const stream = await connection.newStream(protocol, { runOnLimitedConnection: true, signal: AbortSignal.timeout(5_000) })
  const answered = new Promise<void>((resolve, reject) => {
    let received = 0
    stream.addEventListener('message', (event) => {
      received += event.data.byteLength
      if (received >= bytes.byteLength) resolve()
    })
    stream.addEventListener('close', () => reject(new Error(`stream closed after ${received} bytes back`)), { once: true })
  })
  for (let offset = 0; offset < bytes.byteLength; offset += 1_024) {
    if (stream.writeStatus !== 'writable') break
    if (!stream.send(bytes.subarray(offset, offset + 1_024))) await stream.onDrain().catch(() => {})
  }
  try {
    await answered
  } finally {
    stream.abort(new Error('echo done'))
  }
}

test('a relay cuts relayed connections at their byte and time limits, counts each, and goes on relaying', { timeout: 60_000 }, async (t) => {
  const { relay, relayAt } = await loopbackRelay({ reservationsMax: 8, reservationTtlMs: 60_000, connectionDurationMaxMs: 2_000, connectionBytesMax: 64 * 1_024 })
  const nat = new NatTraversal({ relayServer: 'on', relayClient: 'off', reservations: 0, holePunching: false }, Date.now)
  await nat.start(relay)
  const target = await reservingClient('127.0.0.1')
  const dialer = await reservingClient('127.0.0.1')
  onCleanup(t, async () => {
    nat.stop()
    await Promise.all([target.stop(), dialer.stop(), relay.stop()])
  })
  await target.handle(ECHO_PROTOCOL, (stream) => {
    stream.addEventListener('message', (event) => { if (stream.writeStatus === 'writable') stream.send(event.data) })
  }, { runOnLimitedConnection: true })
  await reserve(target, relayAt('127.0.0.1'))
  const through = relayAt('127.0.0.1').encapsulate(`/p2p-circuit/p2p/${target.peerId}`)

  // 128 KiB each way through a 64 KiB limit: the relay cuts the connection.
  const first = await dialer.dial(through)
  assert.ok(first.limits !== undefined, 'relayed')
  await assert.rejects(echo(first, ECHO_PROTOCOL, new Uint8Array(128 * 1_024)), /stream closed/)
  await waitFor(() => nat.counters.relayedCutAtByteLimit === 1, () => `cut at the byte limit: ${JSON.stringify(nat.counters)}`)
  await waitFor(() => first.status !== 'open', 'the relayed connection closed')

  // An idle relayed connection ends at the time limit.
  const second = await dialer.dial(through)
  assert.notEqual(second.id, first.id)
  await echo(second, ECHO_PROTOCOL, new Uint8Array(1_024))
  await waitFor(() => nat.counters.relayedCutAtDurationLimit === 1, () => `cut at the time limit: ${JSON.stringify(nat.counters)}`, 6_000)
  await waitFor(() => second.status !== 'open', 'the relayed connection closed')

  // The reservation stands, and the relay relays the next connection as before.
  const third = await dialer.dial(through)
  await echo(third, ECHO_PROTOCOL, new Uint8Array(1_024))
  assert.equal(nat.counters.relayedCutAtByteLimit + nat.counters.relayedCutAtDurationLimit, 2)
})

/** A started Shoal host on 127.0.0.1. */
async function loopbackHost(t: HasAfter, nat: NatOptions, onAddressRejected: (reason: AddressRejection) => void = () => {}): Promise<ShoalHost> {
  const host = await createHost({
    privateKey: await generateKeyPair('Ed25519'),
    listen: ['/ip4/127.0.0.1/tcp/0'],
    announce: [],
    mdns: false,
    limits: FLOOD_HOST_LIMITS,
    agentVersion: SHOAL_AGENT_VERSION,
    now: Date.now,
    onConnectionRefused: () => {},
    onAddressRejected,
    nat,
  })
  await host.start()
  onCleanup(t, () => host.stop())
  return host
}

/** Protobuf by hand, for messages a well-behaved library would never send. */
const varintField = (field: number, value: number): number[] => [...varint(field << 3), ...varint(value)]
const bytesField = (field: number, bytes: Uint8Array): number[] => [...varint((field << 3) | 2), ...varint(bytes.byteLength), ...bytes]
const lengthPrefixed = (body: number[]): Uint8Array => new Uint8Array([...varint(body.length), ...body])

function varint(value: number): number[] {
  const bytes: number[] = []
  for (; value >= 0x80; value >>>= 7) bytes.push((value & 0x7f) | 0x80)
  bytes.push(value)
  return bytes
}

/** A WebRTC signalling message as @libp2p/webrtc's protobuf has it: type, data. */
function signallingMessage(type: number, data: string): Uint8Array {
  return lengthPrefixed([...varintField(1, type), ...bytesField(2, Buffer.from(data))])
}

test('malformed WebRTC signalling is refused and counted, and the relayed connection it came on stands', { timeout: 60_000 }, async (t) => {
  const { relay, relayAt } = await loopbackRelay({ reservationsMax: 8, reservationTtlMs: 60_000, connectionDurationMaxMs: 60_000, connectionBytesMax: 2 ** 20 })
  onCleanup(t, () => relay.stop())
  // No STUN server: on loopback ICE needs none.
  const target = await loopbackHost(t, { ...NAT_TRAVERSAL_OFF, holePunching: { iceServers: [] } })
  const nat = new NatTraversal({ relayServer: 'off', relayClient: 'off', reservations: 0, holePunching: true }, Date.now)
  await nat.start(target)
  onCleanup(t, () => nat.stop())
  const attacker = await reservingClient('127.0.0.1')
  onCleanup(t, () => attacker.stop())
  await reserve(target as never, relayAt('127.0.0.1'))
  const connection = await attacker.dial(relayAt('127.0.0.1').encapsulate(`/p2p-circuit/p2p/${target.peerId}`))
  const garbage = [
    new Uint8Array([10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
    signallingMessage(1, 'an answer where an offer belongs'),
    signallingMessage(0, 'v=0 but not an SDP offer at all'),
  ]
  for (const [index, message] of garbage.entries()) {
    const stream = await connection.newStream('/webrtc-signaling/0.0.1', { runOnLimitedConnection: true })
    stream.send(message)
    await waitFor(() => nat.counters.signallingMalformed === index + 1, () => `message ${index} counted: ${JSON.stringify(nat.counters)}`)
  }
  assert.equal(nat.counters.signallingFailed, 0)
  assert.equal(connection.status, 'open')
  await echo(connection, PING_PROTOCOL, new Uint8Array(32))
})

/**
 * A peer whose identify answer reports `observed` as the address it sees us at: libp2p's
 * identify message (publicKey = 1, protocols = 3, observedAddr = 4, agentVersion = 6).
 */
async function spoofingPeer(t: HasAfter, observed: Uint8Array): Promise<Libp2p> {
  const privateKey = await generateKeyPair('Ed25519')
  const peer = await createLibp2p({
    privateKey,
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
  })
  onCleanup(t, () => peer.stop())
  const message = lengthPrefixed([
    ...bytesField(1, publicKeyToProtobuf(privateKey.publicKey)),
    ...bytesField(3, Buffer.from(PING_PROTOCOL)),
    ...bytesField(4, observed),
    ...bytesField(6, Buffer.from('spoofer')),
  ])
  await peer.handle('/ipfs/id/1.0.0', (stream) => {
    stream.send(message)
    void stream.close()
  })
  return peer
}

test('observed addresses peers report are never announced unverified; unreachable and malformed ones are counted', { timeout: 60_000 }, async (t) => {
  const rejections: AddressRejection[] = []
  const host = await loopbackHost(t, { ...NAT_TRAVERSAL_OFF, autonat: true }, (reason) => rejections.push(reason))
  const { addressManager } = hostInternals(host)
  const spoofed = multiaddr('/ip4/11.22.33.44/tcp/4001/ws')
  const spoofers = [
    await spoofingPeer(t, spoofed.bytes),
    await spoofingPeer(t, multiaddr('/webrtc').bytes),
    await spoofingPeer(t, new Uint8Array([0xff, 0xff, 0xff, 0x01])),
  ]
  for (const spoofer of spoofers) await host.dial(spoofer.getMultiaddrs()[0]!)
  await waitFor(() => addressManager.getObservedAddrs().some((address) => address.equals(spoofed)), 'the spoofed address awaits AutoNAT')
  await waitFor(() => rejections.includes('not-a-network-address'), () => `the address naming no network refused: ${rejections}`)
  assert.ok(!host.getMultiaddrs().some((address) => address.toString().includes('11.22.33.44')), 'never announced while unverified')
  // AutoNAT's verdict: on loopback no server could dial the spoofed address back (nor may
  // one: it is not ours), so its call is made here as the AutoNAT client makes it.
  addressManager.removeObservedAddr(spoofed)
  assert.deepEqual(rejections.filter((reason) => reason === 'observed-address-unreachable'), ['observed-address-unreachable'])
  assert.ok(!addressManager.getObservedAddrs().some((address) => address.equals(spoofed)))
  // Our own connectivity is untouched: the three connections stand, and a new peer is reached.
  for (const spoofer of spoofers) assert.equal(host.getConnections(spoofer.peerId)[0]?.status, 'open')
  const honest = await loopbackHost(t, NAT_TRAVERSAL_OFF)
  await echo(await host.dial(honest.getMultiaddrs()[0]!), PING_PROTOCOL, new Uint8Array(32))
})
