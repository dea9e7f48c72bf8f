import assert from 'node:assert/strict'
import { test } from 'node:test'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { connectThroughNat } from '../testing/nat-connect.ts'
import { NatTestbed, natTestbedUnavailable, type NatMode } from '../testing/nat-testbed.ts'
import { FLOOD_HOST_LIMITS, floodReservations } from '../testing/relay-flood.ts'
import { reachabilityOf, webRtcAddressThrough } from './nat-traversal.ts'

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
// direct, and a symmetric pair, which must stay relayed and stay up. The whole matrix:
// npm run test:nat.
const unavailable = await natTestbedUnavailable()
for (const [first, second, direct] of [['portrestricted', 'portrestricted', true], ['symmetric', 'symmetric', false]] as Array<[NatMode, NatMode, boolean]>) {
  test(`through NATs: ${first}–${second} connects through the relay${direct ? ' and upgrades to a direct connection' : ' and stays relayed'}`, { skip: unavailable, timeout: 120_000 }, async () => {
    const testbed = await NatTestbed.up(first, second)
    try {
      const row = await connectThroughNat(testbed)
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
