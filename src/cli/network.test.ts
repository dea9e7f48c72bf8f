/**
 * Five real daemons on loopback: they find each other from one bootstrap address through
 * peer exchange, measure their latency, report what they see through `shoal peers` and
 * `shoal stats`, stop cleanly on SIGTERM and, restarted without a bootstrap list,
 * re-dial the peers they cached.
 */
import assert from 'node:assert/strict'
import type { ChildProcess } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { test, type TestContext } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import type { PeerInfo } from '../node/api.ts'
import { collect, runShoal, startShoal, waitForLine } from '../testing/cli.ts'
import { onCleanup, tempDir } from '../testing/temp.ts'

interface Daemon {
  repo: string
  peerId: string
  address: string
  process: ChildProcess
}

async function startDaemon(t: TestContext, repo: string, bootstrap: string[]): Promise<Daemon> {
  const args = ['--repo', repo, 'daemon', '--init', '--api', '127.0.0.1:0', '--listen', '/ip4/127.0.0.1/tcp/0', '--no-mdns']
  if (bootstrap.length > 0) args.push('--bootstrap', ...bootstrap)
  const child = startShoal(args)
  onCleanup(t, () => child.kill('SIGKILL'))
  const [, peerId] = await waitForLine(child, /peer id: (\S+)/)
  const [, listening] = await waitForLine(child, /listening on (\/ip4\/127\.0\.0\.1\/tcp\/\d+)/)
  await waitForLine(child, /daemon ready/)
  return { repo, peerId: peerId!, address: `${listening}/p2p/${peerId}`, process: child }
}

async function peersOf(daemon: Daemon): Promise<PeerInfo[]> {
  const result = await runShoal(['--repo', daemon.repo, 'peers', '--json'])
  assert.equal(result.code, 0, result.stderr)
  return JSON.parse(result.stdout) as PeerInfo[]
}

async function eventually<T>(what: string, probe: () => Promise<T | undefined>, msMax = 30_000): Promise<T> {
  const deadline = Date.now() + msMax
  for (;;) {
    const value = await probe()
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(250)
  }
}

test('five daemons on loopback form a full mesh from one bootstrap address', { timeout: 120_000 }, async (t) => {
  const dir = await tempDir(t)
  const first = await startDaemon(t, join(dir, 'n0'), [])
  const daemons = [first]
  for (let index = 1; index < 5; index++) daemons.push(await startDaemon(t, join(dir, `n${index}`), [first.address]))

  // Each knows only the first daemon; peer exchange tells them of the others.
  for (const daemon of daemons) {
    const others = new Set(daemons.filter((other) => other !== daemon).map((other) => other.peerId))
    const peers = await eventually(`${daemon.peerId} to see all four others with a latency`, async () => {
      const peers = await peersOf(daemon)
      const ready = peers.filter((peer) => others.has(peer.peerId) && peer.latencyMs !== null)
      return ready.length === others.size ? peers : undefined
    })
    for (const peer of peers) {
      assert.ok(peer.connections.length >= 1)
      for (const connection of peer.connections) {
        assert.match(connection.remoteAddress, /^\/ip4\/127\.0\.0\.1\/tcp\/\d+/)
        assert.equal(connection.relayed, false)
        assert.ok(connection.direction === 'inbound' || connection.direction === 'outbound')
      }
      assert.ok(peer.latencyMs! >= 0 && peer.latencyMs! < 1_000, `latency ${peer.latencyMs}`)
    }
  }

  const stats = JSON.parse((await runShoal(['--repo', first.repo, 'stats', '--json'])).stdout) as Record<string, Record<string, number>>
  const connections = Object.values(stats['shoal_connections'] ?? {}).reduce((sum, value) => sum + value, 0)
  assert.ok(connections >= 4, `connections ${connections}`)
  assert.ok((stats['shoal_protocol_bytes_total']?.['protocol=/shoal/membership/1.0.0,direction=in'] ?? 0) > 0)
  assert.ok((stats['shoal_membership_total']?.['counter=pongsReceived'] ?? 0) >= 4)
  const apiUrl = (await readFile(join(first.repo, 'api'), 'utf8')).trim()
  const metrics = await (await fetch(`${apiUrl}/metrics`)).text()
  assert.match(metrics, /^shoal_connections\{direction="(inbound|outbound)",kind="direct"\} \d+$/m)

  // SIGTERM: the daemon exits 0 within 5 s and its peers see it go.
  const last = daemons.at(-1)!
  const stoppedAt = Date.now()
  last.process.kill('SIGTERM')
  const exit = await collect(last.process)
  assert.equal(exit.code, 0, exit.stderr)
  assert.ok(Date.now() - stoppedAt < 5_000, `stopped in ${Date.now() - stoppedAt} ms`)
  await eventually('the others to drop the stopped daemon', async () =>
    (await peersOf(first)).some((peer) => peer.peerId === last.peerId) ? undefined : true)

  // Restarted with no bootstrap list, it re-dials the peers it cached.
  const restarted = await startDaemon(t, last.repo, [])
  await eventually('the restarted daemon to reconnect from its peer cache', async () =>
    (await peersOf(restarted)).length >= 2 ? true : undefined)
})
