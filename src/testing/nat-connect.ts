/**
 * One row of the NAT matrix: peer 1 connects to peer 2 of a NatTestbed and the row records
 * how (relayed or direct, the upgrade), how fast, and whether the connection still stands a
 * while later.
 */
import type { ConnectResult, PeerInfo } from '../node/api.ts'
import type { NatTestbed } from './nat-testbed.ts'

export interface NatConnectRow {
  connected: boolean
  error: string | undefined
  relayedAtStart: boolean
  /** Peer 1 holds a direct connection to peer 2 after the wait. */
  directAtEnd: boolean
  firstByteMs: number | null
  upgradeMs: number | null
  upgradeAttempts: number
  /** Still connected (any way) ALIVE_AFTER_MS after the connect returned. */
  alive: boolean
  aliveAfterMs: number
}

/** How long the connect waits for a relayed connection to become direct (the target is 2 s). */
export const WAIT_DIRECT_MS = 5_000
const ALIVE_AFTER_MS = 3_000

export async function connectThroughNat(testbed: NatTestbed): Promise<NatConnectRow> {
  const address = await testbed.dialAddress('peer2')
  const connect = await testbed.shoal('peer1', ['swarm', 'connect', address, '--wait-direct', String(WAIT_DIRECT_MS), '--json'])
  if (connect.code !== 0) {
    return { connected: false, error: connect.stderr.trim(), relayedAtStart: false, directAtEnd: false, firstByteMs: null, upgradeMs: null, upgradeAttempts: 0, alive: false, aliveAfterMs: ALIVE_AFTER_MS }
  }
  const result = JSON.parse(connect.stdout) as ConnectResult
  await new Promise((resolve) => setTimeout(resolve, ALIVE_AFTER_MS))
  const peers = await testbed.shoal('peer1', ['peers', '--json'])
  const peer = peers.code === 0 ? (JSON.parse(peers.stdout) as PeerInfo[]).find((info) => info.peerId === result.peerId) : undefined
  const exited = testbed.exitedNodes()
  return {
    connected: true,
    error: exited.length > 0 ? `daemon exited: ${exited.join(', ')}` : undefined,
    relayedAtStart: result.relayed,
    directAtEnd: peer?.connections.some((connection) => !connection.relayed) ?? false,
    firstByteMs: result.firstByteMs,
    upgradeMs: result.upgradeMs,
    upgradeAttempts: result.upgradeAttempts,
    alive: peer !== undefined,
    aliveAfterMs: ALIVE_AFTER_MS,
  }
}
