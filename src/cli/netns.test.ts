/**
 * Daemons on hosts with their own addresses: network namespaces joined by a bridge, with
 * addresses in 10.213.77.0/24 that exist only inside them (no link to the machine's own
 * network). They find each other by bootstrap address and, with fresh repositories, by
 * mDNS. Needs root and iproute2; skipped with the reason otherwise. Every namespace made
 * is deleted at the end.
 */
import assert from 'node:assert/strict'
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { join } from 'node:path'
import { test, type TestContext } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import type { PeerInfo } from '../node/api.ts'
import { collect, SHOAL_BIN, waitForLine } from '../testing/cli.ts'
import { onCleanup, tempDir } from '../testing/temp.ts'

const SUBNET = '10.213.77'
const HOST_COUNT = 3

function whyNotPermitted(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root to create network namespaces'
  try {
    execFileSync('ip', ['netns', 'list'], { stdio: 'ignore' })
  } catch {
    return 'needs iproute2 (ip netns)'
  }
  return undefined
}

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] })
}

/** A bridge namespace and HOST_COUNT host namespaces wired to it; returns the host namespace names. */
function buildNetwork(t: TestContext): string[] {
  const prefix = `shoal${process.pid % 100_000}`
  const bridge = `${prefix}-br`
  const hosts = Array.from({ length: HOST_COUNT }, (_, index) => `${prefix}-h${index + 1}`)
  onCleanup(t, () => {
    for (const namespace of [...hosts, bridge]) {
      try {
        ip('netns', 'del', namespace)
      } catch {
        // Not created: the build failed before it.
      }
    }
  })
  ip('netns', 'add', bridge)
  ip('-n', bridge, 'link', 'add', 'br0', 'type', 'bridge')
  ip('-n', bridge, 'link', 'set', 'br0', 'up')
  hosts.forEach((host, index) => {
    ip('netns', 'add', host)
    ip('-n', bridge, 'link', 'add', `v${index + 1}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', host)
    ip('-n', bridge, 'link', 'set', `v${index + 1}`, 'master', 'br0', 'up')
    ip('-n', host, 'addr', 'add', `${SUBNET}.${index + 1}/24`, 'dev', 'eth0')
    ip('-n', host, 'link', 'set', 'eth0', 'up', 'multicast', 'on')
    ip('-n', host, 'link', 'set', 'lo', 'up')
    // mDNS sends to 224.0.0.251; this route keeps it on the bridge.
    ip('-n', host, 'route', 'add', '224.0.0.0/4', 'dev', 'eth0')
  })
  return hosts
}

function shoalIn(namespace: string, args: string[]): ChildProcess {
  return spawn('ip', ['netns', 'exec', namespace, process.execPath, SHOAL_BIN, ...args], {
    env: { ...process.env, SHOAL_DEBUG: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
}

interface Daemon {
  namespace: string
  repo: string
  peerId: string
  process: ChildProcess
}

async function startDaemon(t: TestContext, namespace: string, repo: string, index: number, extra: string[]): Promise<Daemon> {
  const child = shoalIn(namespace, ['--repo', repo, 'daemon', '--init', '--api', '127.0.0.1:0', '--listen', `/ip4/${SUBNET}.${index + 1}/tcp/4001`, ...extra])
  onCleanup(t, async () => {
    child.kill('SIGTERM')
    await collect(child, 10_000).catch(() => child.kill('SIGKILL'))
  })
  const [, peerId] = await waitForLine(child, /peer id: (\S+)/)
  await waitForLine(child, /daemon ready/)
  return { namespace, repo, peerId: peerId!, process: child }
}

async function waitForMesh(daemons: Daemon[], msMax: number): Promise<void> {
  const deadline = Date.now() + msMax
  for (const daemon of daemons) {
    const others = daemons.filter((other) => other !== daemon).map((other) => other.peerId)
    for (;;) {
      const result = await collect(shoalIn(daemon.namespace, ['--repo', daemon.repo, 'peers', '--json']))
      assert.equal(result.code, 0, result.stderr)
      const peers = JSON.parse(result.stdout) as PeerInfo[]
      const seen = new Set(peers.map((peer) => peer.peerId))
      if (others.every((other) => seen.has(other))) {
        for (const peer of peers) for (const connection of peer.connections) assert.match(connection.remoteAddress, new RegExp(`^/ip4/${SUBNET.replaceAll('.', '\\.')}\\.\\d+/tcp/\\d+`))
        break
      }
      if (Date.now() > deadline) assert.fail(`${daemon.namespace} sees ${[...seen].join(', ') || 'nobody'}, not all of ${others.join(', ')}`)
      await sleep(500)
    }
  }
}

test('daemons in their own network namespaces find each other by bootstrap and by mDNS', { timeout: 120_000 }, async (t) => {
  const reason = whyNotPermitted()
  if (reason !== undefined) {
    t.skip(reason)
    return
  }
  const hosts = buildNetwork(t)
  const dir = await tempDir(t)

  const bootstrapped: Daemon[] = []
  for (const [index, host] of hosts.entries()) {
    const bootstrap = index === 0 ? [] : ['--bootstrap', `/ip4/${SUBNET}.1/tcp/4001/p2p/${bootstrapped[0]!.peerId}`]
    bootstrapped.push(await startDaemon(t, host, join(dir, `bootstrap-${index}`), index, ['--no-mdns', ...bootstrap]))
  }
  await waitForMesh(bootstrapped, 30_000)
  for (const daemon of bootstrapped) {
    daemon.process.kill('SIGTERM')
    assert.equal((await collect(daemon.process, 10_000)).code, 0)
  }

  // Fresh repositories: no bootstrap list, no peer cache; only mDNS can introduce them.
  const discovered: Daemon[] = []
  for (const [index, host] of hosts.entries()) discovered.push(await startDaemon(t, host, join(dir, `mdns-${index}`), index, []))
  await waitForMesh(discovered, 45_000)
})
