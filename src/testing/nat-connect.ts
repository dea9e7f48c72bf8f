/**
 * One row of the NAT matrix: peer 1 connects to peer 2 of a NatTestbed and the row records
 * how (relayed or direct, the upgrade), how fast, and whether the connection still stands a
 * while later; then, optionally, a download from peer 2 to peer 1 and what of it went
 * through the relay.
 */
import { createHash, randomBytes } from 'node:crypto'
import { mkdtemp, open, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { MetricsSummary } from '../net/metrics.ts'
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

/** `by`: peer 2's relayed address, or its peer id alone (found through the DHT: the relay names its connected clients). */
export async function connectThroughNat(testbed: NatTestbed, by: 'address' | 'peer-id' = 'address'): Promise<NatConnectRow> {
  const address = by === 'address' ? await testbed.dialAddress('peer2') : (await testbed.identity('peer2')).peerId
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

export interface NatTransferRow {
  bytes: number
  /** `shoal get` on peer 1, start to end (the DHT lookup, the swarm download, writing the file). */
  seconds: number
  /** What peer 1 received through the relay meanwhile (frame bytes, every protocol). */
  relayedBytes: number
  /** The file came out byte for byte the same. */
  intact: boolean
  error: string | undefined
}

/** Peer 2 adds `mib` MiB of random bytes; peer 1 downloads them with `shoal get` (found through the DHT, fetched by the swarm). */
export async function transferThroughNat(testbed: NatTestbed, mib: number): Promise<NatTransferRow> {
  const directory = await mkdtemp(join(tmpdir(), 'shoal-nat-transfer-'))
  try {
    const source = join(directory, 'source')
    const output = join(directory, 'output')
    const hash = createHash('sha256')
    const file = await open(source, 'w')
    for (let written = 0; written < mib; written++) {
      const chunk = randomBytes(2 ** 20)
      hash.update(chunk)
      await file.write(chunk)
    }
    await file.close()
    const bytes = mib * 2 ** 20
    const failed = (error: string): NatTransferRow => ({ bytes, seconds: 0, relayedBytes: 0, intact: false, error })
    const added = await testbed.shoal('peer2', ['add', '-q', source])
    if (added.code !== 0) return failed(`shoal add: ${added.stderr.trim()}`)
    const cid = added.stdout.trim()
    const relayedBefore = await relayedBytesIn(testbed)
    const startedMs = performance.now()
    const got = await testbed.shoal('peer1', ['get', cid, '-o', output], 600_000)
    const seconds = (performance.now() - startedMs) / 1_000
    if (got.code !== 0) return failed(`shoal get: ${got.stderr.trim()}`)
    const received = createHash('sha256').update(await readFile(output)).digest('hex')
    return { bytes, seconds, relayedBytes: await relayedBytesIn(testbed) - relayedBefore, intact: received === hash.digest('hex'), error: undefined }
  } finally {
    await rm(directory, { recursive: true, force: true })
  }
}

async function relayedBytesIn(testbed: NatTestbed): Promise<number> {
  const stats = await testbed.shoal('peer1', ['stats', '--json'])
  const relayed = (JSON.parse(stats.stdout) as MetricsSummary)['shoal_protocol_relayed_bytes_total'] ?? {}
  return Object.entries(relayed).reduce((sum, [labels, value]) => labels.includes('direction=in') ? sum + value : sum, 0)
}
