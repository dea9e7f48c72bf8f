import assert from 'node:assert/strict'
import { test } from 'node:test'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { StreamAbortEvent, StreamCloseEvent, type MultiaddrConnection, type PeerId } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { ConnectionGuard, type ConnectionLimits, type ConnectionRefusal } from './connection-guard.ts'

function setup(limits: Partial<ConnectionLimits> = {}) {
  let now = 0
  const refusals: ConnectionRefusal[] = []
  const open: Array<{ remoteAddr: Multiaddr; remotePeer: PeerId }> = []
  const guard = new ConnectionGuard(
    { connectionsMax: 100, perIpMax: 100, inboundPerIpPerSecondMax: 1_000, streamsPerConnectionMax: 10, handshakesMax: 100, handshakesPerIpMax: 100, relayReservationsPerIpMax: 2, ...limits },
    () => now,
    (reason) => refusals.push(reason),
  )
  guard.openConnections = () => open
  const gater = guard.gater()
  const aborted = new Map<string, Error>()
  /** An inbound connection at the gate: an event target, as libp2p's MultiaddrConnection is, to say when it closes; its abort is recorded. */
  const arriving = (address: string): MultiaddrConnection => Object.assign(new EventTarget(), {
    remoteAddr: multiaddr(address),
    abort: (error: Error) => aborted.set(address, error),
  }) as unknown as MultiaddrConnection
  const admitted = (connection: MultiaddrConnection): boolean => !(gater.denyInboundConnection!(connection) as boolean)
  /** A connection that, once admitted, completes its handshake and opens. */
  const attempt = (address: string): boolean => {
    const connection = arriving(address)
    if (!admitted(connection)) return false
    open.push({ remoteAddr: connection.remoteAddr, remotePeer: ANY_PEER })
    guard.connectionOpened(connection.remoteAddr)
    return true
  }
  return { guard, gater, arriving, admitted, attempt, refusals, open, aborted, advance: (ms: number) => { now += ms } }
}

const ANY_PEER = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))

test('inbound connections from one IP are rate-limited by a token bucket, others are not affected', () => {
  const { attempt, refusals, advance } = setup({ inboundPerIpPerSecondMax: 5 })
  const accepted = Array.from({ length: 20 }, (_, port) => attempt(`/ip4/10.0.0.1/tcp/${1000 + port}`)).filter(Boolean).length
  assert.equal(accepted, 5)
  assert.equal(refusals.filter((reason) => reason === 'inbound-rate').length, 15)
  assert.ok(attempt('/ip4/10.0.0.2/tcp/1000'), 'another address is not limited')
  advance(1_000)
  assert.equal(Array.from({ length: 10 }, (_, port) => attempt(`/ip4/10.0.0.1/tcp/${2000 + port}`)).filter(Boolean).length, 5, 'the bucket refills')
})

test('open connections are limited per IP and in total', () => {
  const perIp = setup({ perIpMax: 3 })
  assert.equal(Array.from({ length: 5 }, (_, port) => perIp.attempt(`/ip4/10.0.0.1/tcp/${port + 1}`)).filter(Boolean).length, 3)
  assert.deepEqual(perIp.refusals, ['per-ip-max', 'per-ip-max'])
  assert.ok(perIp.attempt('/ip6/::1/tcp/1'))

  const total = setup({ connectionsMax: 4 })
  assert.equal(Array.from({ length: 6 }, (_, index) => total.attempt(`/ip4/10.0.0.${index + 1}/tcp/1`)).filter(Boolean).length, 4)
  assert.deepEqual(total.refusals, ['connections-max', 'connections-max'])
})

test('a relay holds at most relayReservationsPerIpMax reservations for peers behind one IP; renewals pass', async () => {
  const { guard, gater, open, refusals } = setup({ relayReservationsPerIpMax: 2 })
  const peers = await Promise.all(Array.from({ length: 4 }, async () => peerIdFromPrivateKey(await generateKeyPair('Ed25519'))))
  const addresses = ['/ip4/11.0.0.21/tcp/5001', '/ip4/11.0.0.21/tcp/5002', '/ip4/11.0.0.21/tcp/5003', '/ip4/11.0.0.22/tcp/5001'].map((text) => multiaddr(text))
  peers.forEach((peer, index) => open.push({ remoteAddr: addresses[index]!, remotePeer: peer }))
  const reservations = [{ addr: addresses[0]! }, { addr: addresses[1]! }]
  guard.relayReservations = () => reservations
  const deny = (peer: PeerId): boolean => gater.denyInboundRelayReservation!(peer) as boolean
  assert.equal(deny(peers[2]!), true, 'a third peer behind 11.0.0.21 is refused')
  assert.equal(deny(peers[0]!), false, 'a peer renewing its own reservation is not')
  assert.equal(deny(peers[3]!), false, 'nor a peer behind another IP')
  assert.deepEqual(refusals, ['relay-reservations-per-ip'])
})

test('handshakes under way are limited per IP; those that never open are counted by how they ended', () => {
  const { guard, arriving, admitted, attempt, refusals } = setup({ handshakesMax: 5, handshakesPerIpMax: 2 })
  const stalled = Array.from({ length: 4 }, (_, port) => arriving(`/ip4/10.0.0.1/tcp/${port + 1}`))
  assert.deepEqual(stalled.map(admitted), [true, true, false, false])
  assert.deepEqual(refusals, ['handshakes-per-ip-max', 'handshakes-per-ip-max'])
  assert.ok(attempt('/ip4/10.0.0.1/tcp/99') === false, 'a third from the IP waits for a handshake to end')
  const others = Array.from({ length: 3 }, (_, index) => arriving(`/ip4/10.0.1.${index + 1}/tcp/1`))
  assert.deepEqual(others.map(admitted), [true, true, true], 'five handshakes in all (the next test: when every slot is taken)')

  refusals.length = 0
  stalled[0]!.dispatchEvent(new StreamCloseEvent(false))
  stalled[1]!.dispatchEvent(new StreamAbortEvent(Object.assign(new Error('signal timed out'), { name: 'TimeoutError' })))
  others[0]!.dispatchEvent(new StreamAbortEvent(Object.assign(new Error('bad noise'), { name: 'EncryptionFailedError' })))
  assert.deepEqual(refusals, ['handshake-abandoned', 'handshake-timeout', 'handshake-failed'])
  assert.ok(attempt('/ip4/10.0.0.1/tcp/100'), 'the IP has handshake slots again')
  // An opened connection's close is not a handshake's end.
  refusals.length = 0
  const opened = arriving('/ip4/10.0.0.1/tcp/101')
  assert.ok(admitted(opened))
  // The opened connection's address names the peer too.
  guard.connectionOpened(opened.remoteAddr.encapsulate(`/p2p/${ANY_PEER}`))
  opened.dispatchEvent(new StreamCloseEvent(false))
  assert.deepEqual(refusals, [])
})

test('with every handshake slot taken, a newcomer from a less busy address takes the oldest slot of the busiest, which is aborted and counted once', () => {
  const { arriving, admitted, refusals, aborted } = setup({ handshakesMax: 4, handshakesPerIpMax: 4 })
  const flood = Array.from({ length: 4 }, (_, port) => arriving(`/ip4/10.0.0.1/tcp/${port + 1}`))
  assert.deepEqual(flood.map(admitted), [true, true, true, true])

  assert.ok(admitted(arriving('/ip4/10.0.0.2/tcp/1')), 'an address holding no slot gets one')
  assert.deepEqual(refusals, ['handshake-evicted'])
  assert.deepEqual([...aborted.keys()], ['/ip4/10.0.0.1/tcp/1'], 'the busiest address loses its oldest handshake')
  assert.equal(aborted.get('/ip4/10.0.0.1/tcp/1')!.name, 'HandshakeEvictedError')
  flood[0]!.dispatchEvent(new StreamAbortEvent(aborted.get('/ip4/10.0.0.1/tcp/1')!))
  assert.deepEqual(refusals, ['handshake-evicted'], 'the aborted connection\'s close is not counted again')

  assert.equal(admitted(arriving('/ip4/10.0.0.1/tcp/9')), false, 'the busiest address cannot take a slot from a less busy one')
  assert.equal(refusals.at(-1), 'handshakes-max')
  assert.ok(admitted(arriving('/ip4/10.0.0.2/tcp/2')), 'two against three: still less busy')
  assert.deepEqual([...aborted.keys()], ['/ip4/10.0.0.1/tcp/1', '/ip4/10.0.0.1/tcp/2'])
  // Two slots each now: a third from either address finds none busier than itself.
  refusals.length = 0
  assert.equal(admitted(arriving('/ip4/10.0.0.2/tcp/3')), false)
  assert.equal(admitted(arriving('/ip4/10.0.0.1/tcp/10')), false)
  assert.deepEqual(refusals, ['handshakes-max', 'handshakes-max'])
  assert.ok(admitted(arriving('/ip4/10.0.0.3/tcp/1')), 'a third address takes the oldest slot')
  assert.deepEqual([...aborted.keys()].at(-1), '/ip4/10.0.0.1/tcp/3')
})
