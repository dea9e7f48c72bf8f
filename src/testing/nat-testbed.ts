/**
 * Real Shoal daemons behind real Linux NATs: testbed/nat-topology.sh builds the namespaces
 * (a relay on a public segment, two peers each behind a router of a chosen NAT mode), this
 * starts a STUN server (coturn) and a relay daemon in np-relay and a daemon on each peer, and
 * runs `shoal` commands inside the namespaces. Needs root, iproute2, nftables and coturn;
 * `natTestbedUnavailable()` says why not when they are missing.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { createWriteStream } from 'node:fs'
import { access, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { collect, SHOAL_BIN, SHOAL_NODE_FLAGS, waitForLine, type CliResult } from './cli.ts'

export const NAT_MODES = ['public', 'fullcone', 'restricted', 'portrestricted', 'symmetric'] as const
export type NatMode = typeof NAT_MODES[number]

const TOPOLOGY_SCRIPT = fileURLToPath(new URL('../../../testbed/nat-topology.sh', import.meta.url))
const RELAY_IP = '11.0.0.10'
const SHOAL_PORT = 4001
const STUN_PORT = 3478
const RESERVATION_WAIT_MS = 30_000

export type NatNode = 'relay' | 'peer1' | 'peer2'

interface Running {
  repo: string
  process: ChildProcess
  peerId: string
}

/** Why the testbed cannot run here, or undefined when it can. */
export async function natTestbedUnavailable(): Promise<string | undefined> {
  if (process.platform !== 'linux') return 'network namespaces need Linux'
  if (process.getuid?.() !== 0) return 'creating network namespaces needs root'
  for (const tool of ['/usr/sbin/ip', '/usr/sbin/nft', '/usr/bin/turnserver']) {
    try {
      await access(tool)
    } catch {
      return `${tool} is missing (apt-get install iproute2 nftables coturn)`
    }
  }
  const probe = await run('ip', ['netns', 'add', 'np-probe'])
  if (probe.code !== 0) return `ip netns add failed: ${probe.stderr.trim()}`
  await run('ip', ['netns', 'del', 'np-probe'])
  return undefined
}

export class NatTestbed {
  readonly modes: readonly [NatMode, NatMode]
  readonly #root: string
  readonly #nodes = new Map<NatNode, Running>()
  #stun: ChildProcess | undefined

  private constructor(modes: readonly [NatMode, NatMode], root: string) {
    this.modes = modes
    this.#root = root
  }

  /** Builds the topology and starts STUN, the relay and both peers; peers behind NATs hold a reservation when it returns. */
  static async up(mode1: NatMode, mode2: NatMode): Promise<NatTestbed> {
    const built = await run(TOPOLOGY_SCRIPT, ['up', mode1, mode2])
    if (built.code !== 0) throw new Error(`nat-topology.sh up failed: ${built.stderr}`)
    const testbed = new NatTestbed([mode1, mode2], await mkdtemp(join(tmpdir(), 'shoal-nat-')))
    try {
      await testbed.#start()
    } catch (error) {
      await testbed.down()
      throw error
    }
    return testbed
  }

  /** Nodes whose daemon has exited (crashed: the testbed never stops one before down()). */
  exitedNodes(): NatNode[] {
    return [...this.#nodes].flatMap(([node, { process: child }]) => child.exitCode !== null || child.signalCode !== null ? [node] : [])
  }

  peerId(node: NatNode): string {
    return this.#nodes.get(node)!.peerId
  }

  /** Runs `shoal --repo <node's repo> ...args` in the node's namespace. */
  shoal(node: NatNode, args: readonly string[], timeoutMs = 60_000): Promise<CliResult> {
    const child = spawn('ip', ['netns', 'exec', namespaceOf(node), process.execPath, ...SHOAL_NODE_FLAGS, SHOAL_BIN, '--repo', this.#repo(node), ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    return collect(child, timeoutMs)
  }

  async identity(node: NatNode): Promise<{ peerId: string; addresses: string[]; reachability: string | null }> {
    const result = await this.shoal(node, ['id', '--json'])
    if (result.code !== 0) throw new Error(`shoal id on ${node} failed: ${result.stderr}`)
    return JSON.parse(result.stdout) as { peerId: string; addresses: string[]; reachability: string | null }
  }

  /**
   * The address another peer should dial: a public one when the node is public (AutoNAT
   * confirmed it), else its relayed one.
   */
  async dialAddress(node: NatNode): Promise<string> {
    const { addresses } = await this.identity(node)
    const relayed = addresses.find((address) => address.includes('/p2p-circuit/p2p/'))
    const direct = addresses.find((address) => address.startsWith('/ip4/11.') && !address.includes('/p2p-circuit') && address.includes(`/tcp/${SHOAL_PORT}/`))
    const address = direct ?? relayed
    if (address === undefined) throw new Error(`${node} has no address another peer could dial: ${addresses.join(' ')}`)
    return address
  }

  async down(): Promise<void> {
    for (const { process: child } of this.#nodes.values()) child.kill('SIGKILL')
    this.#stun?.kill('SIGKILL')
    await Promise.all([...this.#nodes.values(), ...(this.#stun ? [{ process: this.#stun }] : [])].map(({ process: child }) => exited(child)))
    this.#nodes.clear()
    await run(TOPOLOGY_SCRIPT, ['down'])
    await rm(this.#root, { recursive: true, force: true })
  }

  #repo(node: NatNode): string {
    return join(this.#root, node)
  }

  async #start(): Promise<void> {
    this.#stun = spawn('ip', ['netns', 'exec', 'np-relay', 'turnserver', '-n', '--stun-only', `--listening-ip=${RELAY_IP}`, `--listening-port=${STUN_PORT}`,
      '--no-tls', '--no-dtls', '--no-cli', '--log-file=stdout', '--simple-log'], { stdio: ['ignore', 'pipe', 'pipe'] })
    this.#stun.stdout!.resume()
    this.#stun.stderr!.resume()
    const relayAddress = `/ip4/${RELAY_IP}/tcp/${SHOAL_PORT}`
    const relay = await this.#startDaemon('relay', { 'network.announce': JSON.stringify([relayAddress]) }, [])
    const bootstrap = [`${relayAddress}/p2p/${relay.peerId}`]
    const ice = JSON.stringify([{ urls: `stun:${RELAY_IP}:${STUN_PORT}` }])
    await Promise.all((['peer1', 'peer2'] as const).map((node) => this.#startDaemon(node, { 'nat.holePunching.iceServers': ice }, bootstrap)))
    await Promise.all((['peer1', 'peer2'] as const).map(async (node, index) => {
      if (this.modes[index] === 'public') return this.#waitFor(node, (identity) => identity.reachability === 'public', 'AutoNAT to confirm its public address')
      return this.#waitFor(node, (identity) => identity.addresses.some((address) => address.includes('/p2p-circuit/p2p/')), 'a relay reservation')
    }))
  }

  async #waitFor(node: NatNode, done: (identity: { addresses: string[]; reachability: string | null }) => boolean, what: string): Promise<void> {
    const deadline = Date.now() + RESERVATION_WAIT_MS
    for (;;) {
      const identity = await this.identity(node)
      if (done(identity)) return
      if (Date.now() > deadline) throw new Error(`${node} did not get ${what} within ${RESERVATION_WAIT_MS} ms: ${JSON.stringify(identity)}`)
      await new Promise((resolve) => setTimeout(resolve, 200))
    }
  }

  async #startDaemon(node: NatNode, config: Record<string, string>, bootstrap: string[]): Promise<Running> {
    const repo = this.#repo(node)
    const init = await this.shoal(node, ['init'])
    if (init.code !== 0) throw new Error(`shoal init failed: ${init.stderr}`)
    for (const [key, value] of Object.entries(config)) {
      const set = await this.shoal(node, ['config', 'set', key, value])
      if (set.code !== 0) throw new Error(`shoal config set ${key} failed: ${set.stderr}`)
    }
    const args = ['daemon', '--api', '127.0.0.1:0', '--listen', `/ip4/0.0.0.0/tcp/${SHOAL_PORT}`, '--no-mdns']
    if (bootstrap.length > 0) args.push('--bootstrap', ...bootstrap)
    const child = spawn('ip', ['netns', 'exec', namespaceOf(node), process.execPath, ...SHOAL_NODE_FLAGS, SHOAL_BIN, '--repo', repo, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, SHOAL_DEBUG: '' },
    })
    // SHOAL_NAT_LOG_DIR=<dir> (with DEBUG=libp2p:... for libp2p's logs) keeps each daemon's stderr.
    const logDir = process.env['SHOAL_NAT_LOG_DIR']
    if (logDir === undefined) child.stderr!.resume()
    else child.stderr!.pipe(createWriteStream(join(logDir, `${node}.err`)))
    const [, peerId] = await waitForLine(child, /peer id: (\S+)/)
    await waitForLine(child, /daemon ready/)
    const running = { repo, process: child, peerId: peerId! }
    this.#nodes.set(node, running)
    return running
  }
}

function namespaceOf(node: NatNode): string {
  return `np-${node}`
}

function run(command: string, args: readonly string[]): Promise<CliResult> {
  return collect(spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] }), 30_000)
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  return new Promise((resolve) => child.once('exit', () => resolve()))
}
