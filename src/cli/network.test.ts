/**
 * Five real daemons on loopback: they find each other from one bootstrap address through
 * peer exchange, measure their latency, report what they see through `shoal peers` and
 * `shoal stats`, stop cleanly on SIGTERM and, restarted without a bootstrap list,
 * re-dial the peers they cached.
 */
import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { connect } from 'node:net'
import { join } from 'node:path'
import { test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import type { PeerInfo } from '../node/api.ts'
import { collect, eventually, runShoal, startDaemon, type Daemon } from '../testing/cli.ts'
import { tempDir } from '../testing/temp.ts'

/** Connection attempts of the flood, made as fast as this machine opens sockets (about 1,000 a second). */
const FLOOD_CONNECTIONS = 1_000

const UNKNOWN_PEER = '12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA'

async function peersOf(daemon: Daemon): Promise<PeerInfo[]> {
  const result = await runShoal(['--repo', daemon.repo, 'peers', '--json'])
  assert.equal(result.code, 0, result.stderr)
  return JSON.parse(result.stdout) as PeerInfo[]
}

/** Opens `count` TCP connections as fast as it can and closes each at once (a bounded flood). */
async function floodConnections(port: number, count: number): Promise<void> {
  const attempts = Array.from({ length: count }, () => new Promise<void>((resolve) => {
    const socket = connect({ host: '127.0.0.1', port }, () => socket.destroy())
    socket.on('close', () => resolve())
    socket.on('error', () => resolve())
  }))
  await Promise.all(attempts)
  await sleep(500)
}

test('five daemons on loopback form a full mesh from one bootstrap address', { timeout: 120_000 }, async (t) => {
  const dir = await tempDir(t)
  const first = await startDaemon(t, join(dir, 'n0'))
  const daemons = [first]
  for (let index = 1; index < 5; index++) daemons.push(await startDaemon(t, join(dir, `n${index}`), { bootstrap: [first.address] }))

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

  // A host that connects far faster than allowed is refused and counted; peers stay served.
  const port = Number(/\/tcp\/(\d+)/.exec(first.address)![1])
  const floodStarted = Date.now()
  await floodConnections(port, FLOOD_CONNECTIONS)
  const floodSeconds = (Date.now() - floodStarted) / 1000
  const afterFlood = JSON.parse((await runShoal(['--repo', first.repo, 'stats', '--json'])).stdout) as Record<string, Record<string, number>>
  const refused = afterFlood['shoal_connections_refused_total']?.['reason=inbound-rate'] ?? 0
  // The default allows bursts of 10 and 10 a second after that.
  const allowedMax = 10 + Math.ceil(10 * floodSeconds)
  assert.ok(refused >= FLOOD_CONNECTIONS - allowedMax, `refused ${refused} of ${FLOOD_CONNECTIONS} in ${floodSeconds} s`)
  assert.equal((await peersOf(first)).length, 4, 'every peer is still connected after the flood')

  // swarm disconnect and connect, by hand.
  const second = daemons[1]!
  assert.equal((await runShoal(['--repo', first.repo, 'swarm', 'disconnect', second.peerId])).code, 0)
  const connected = await runShoal(['--repo', first.repo, 'swarm', 'connect', second.address])
  assert.match(connected.stdout.trim(), new RegExp(`^connected to ${second.peerId} directly in \\d+ ms; first byte at \\d+ ms$`))
  const badAddress = await runShoal(['--repo', first.repo, 'swarm', 'connect', `/ip4/127.0.0.1/tcp/1/p2p/${UNKNOWN_PEER}`])
  assert.equal(badAddress.code, 1)
  assert.match(badAddress.stderr, /^shoal: could not connect to \/ip4\/127\.0\.0\.1\/tcp\/1\/p2p\/\S+: .+\n$/)
  const notAnAddress = await runShoal(['--repo', first.repo, 'swarm', 'connect', 'nonsense'])
  assert.equal(notAnAddress.code, 1)
  assert.match(notAnAddress.stderr, /^shoal: invalid address 'nonsense'/)

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
  const restarted = await startDaemon(t, last.repo)
  await eventually('the restarted daemon to reconnect from its peer cache', async () =>
    (await peersOf(restarted)).length >= 2 ? true : undefined)
})

test('bootstrap add, ls and rm edit the config, and network commands need the daemon', async (t) => {
  const repo = join(await tempDir(t), 'repo')
  const shoal = (...args: string[]) => runShoal(['--repo', repo, ...args])
  assert.equal((await shoal('init')).code, 0)
  const peer = UNKNOWN_PEER
  const address = `/ip4/192.0.2.7/tcp/4001/p2p/${peer}`
  assert.equal((await shoal('bootstrap', 'add', address)).stdout, `added ${address}\n`)
  assert.equal((await shoal('bootstrap', 'add', address)).stdout, '', 'adding twice keeps one')
  assert.deepEqual(JSON.parse((await shoal('bootstrap', 'ls', '--json')).stdout), [address])

  const withoutPeer = await shoal('bootstrap', 'add', '/ip4/192.0.2.7/tcp/4001')
  assert.equal(withoutPeer.code, 1)
  assert.equal(withoutPeer.stderr, "shoal: bootstrap address '/ip4/192.0.2.7/tcp/4001' must end in /p2p/<peer id>\n")
  const missing = await shoal('bootstrap', 'rm', '/ip4/192.0.2.8/tcp/1/p2p/' + peer)
  assert.equal(missing.code, 1)
  assert.match(missing.stderr, /^shoal: not in the bootstrap list: /)
  assert.equal((await shoal('bootstrap', 'rm', 'all')).stdout, `removed ${address}\n`)
  assert.equal((await shoal('bootstrap', 'ls')).stdout, '')

  for (const command of [['peers'], ['stats'], ['swarm', 'connect', address], ['swarm', 'disconnect', peer]]) {
    const offline = await shoal(...command)
    assert.equal(offline.code, 1, command.join(' '))
    assert.equal(offline.stderr, 'shoal: the node is offline: start it with `shoal daemon`\n')
  }
  const badFlag = await shoal('daemon', '--bootstrap', 'nonsense')
  assert.equal(badFlag.code, 1)
  assert.match(badFlag.stderr, /^shoal: invalid bootstrap address 'nonsense'/)
})

test('daemons that listen on WebSockets only connect over WebSockets', { timeout: 60_000 }, async (t) => {
  const dir = await tempDir(t)
  const first = await startDaemon(t, join(dir, 'ws0'), { listen: '/ip4/127.0.0.1/tcp/0/ws' })
  assert.match(first.address, /\/tcp\/\d+\/ws\/p2p\//)
  const second = await startDaemon(t, join(dir, 'ws1'), { bootstrap: [first.address], listen: '/ip4/127.0.0.1/tcp/0/ws' })
  const peers = await eventually('the WebSocket connection with a latency', async () => {
    const peers = await peersOf(second)
    return peers.length === 1 && peers[0]!.latencyMs !== null ? peers : undefined
  })
  assert.equal(peers[0]!.peerId, first.peerId)
  assert.match(peers[0]!.connections[0]!.remoteAddress, /^\/ip4\/127\.0\.0\.1\/tcp\/\d+\/ws/)
})
