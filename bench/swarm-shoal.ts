/**
 * bench:swarm's Shoal system, written against the swarm protocol's user interface (it is
 * kept here, in one module, so that it is easy to adjust as that interface settles):
 *   - Every node is a `shoal daemon` of the build (testing/cli.ts startDaemon: a fresh
 *     repository, listening on /ip4/127.0.0.1/tcp/0, no mDNS), with the per-IP connection
 *     limits lifted through `shoal config set` (SHOAL_CONFIG), as every node is on 127.0.0.1;
 *     otherwise the config defaults. Daemons run under plain `node`, as the tests run them.
 *   - Seed: its daemon, then `shoal add --quiet <file>` (the config's CID profile), which
 *     prints the root CID. Leechers' daemons start before the timed phase too.
 *   - Leecher: a bench child that has loaded the CLI (cli/program.ts) and, on GO, runs the
 *     commands a user would: `shoal swarm connect <seed multiaddr>`, then
 *     `shoal get <cid> -o <file>`, which goes through the leecher's daemon's HTTP API; the
 *     commands run in the child's process (buildProgram, as cli/main.ts does), so that Node's
 *     start-up is not timed, as it is not for the other systems. Done when `get` returns (the
 *     file renamed into place); the file is hashed after.
 * A build whose CLI has no `get` command, or whose daemon does not speak the swarm protocol
 * (SWARM_PROTOCOL, looked for in the seed daemon's identify record), gets a "not built" row.
 */
import { join } from 'node:path'
import { Readable, Writable } from 'node:stream'
import { multiaddr } from '@multiformats/multiaddr'
import { CommanderError } from 'commander'
import { isShoalError } from '../src/core/errors.ts'
import { SWARM_PROTOCOL } from '../src/core/swarm/messages.ts'
import { runShoal, startDaemon, type Daemon } from '../src/testing/cli.ts'
import { BenchError, type SeedInfo, type SystemRoles } from './swarm-child.ts'
import { killAndWait, trackProcess } from './swarm-process.ts'
import { startBenchHost } from './loopback-host.ts'

export { SWARM_PROTOCOL }

/** `shoal config set` pairs for every daemon: a single-IP testbed. */
const SHOAL_CONFIG: Readonly<Record<string, string>> = {
  'network.connections.perIpMax': '1000',
  'network.connections.inboundPerIpPerSecondMax': '1000000',
}
const ADD_MS_MAX = 300_000
const IDENTIFY_MS_MAX = 10_000

/** Where the parent's cleanups go: run last first, whatever happened. */
export interface Cleanups {
  after(cleanup: () => unknown): void
}

export interface ShoalNodes {
  seed: SeedInfo
  /** Per leecher, what its bench child needs besides the seed info: its daemon's repository. */
  leecherExtras: Array<Record<string, string>>
  /** Whether the seed daemon offers the swarm protocol to its peers; `get` cannot fetch otherwise. */
  swarmServed: boolean
}

/** Parent side: the seed daemon with the file added, and one daemon per leecher, all ready. */
export async function startShoalNodes(file: string, workDir: string, leecherCount: number, cleanups: Cleanups): Promise<ShoalNodes> {
  // startDaemon's own cleanup kills without waiting; this one (run first) also waits for the exit.
  const daemon = async (repo: string): Promise<Daemon> => {
    const started = await startDaemon(cleanups, repo, { config: SHOAL_CONFIG })
    trackProcess(started.process)
    cleanups.after(() => killAndWait(started.process))
    return started
  }
  const seedDaemon = await daemon(join(workDir, 'seed-repo'))
  const added = await runShoal(['--repo', seedDaemon.repo, 'add', '--quiet', file], { timeoutMs: ADD_MS_MAX })
  if (added.code !== 0) throw new Error(`shoal add failed (${added.code}): ${added.stderr.trim()}`)
  const cid = added.stdout.trim().split('\n').at(-1)!
  const leechers = await Promise.all(Array.from({ length: leecherCount }, (_, index) => daemon(join(workDir, `leecher-${index}-repo`))))
  return {
    seed: { address: seedDaemon.address, cid },
    leecherExtras: leechers.map((daemon) => ({ repo: daemon.repo })),
    swarmServed: await servesProtocol(seedDaemon.address, SWARM_PROTOCOL),
  }
}

/** Dials `address` from a throwaway host and reads the protocols its identify record lists. */
async function servesProtocol(address: string, protocol: string): Promise<boolean> {
  const host = await startBenchHost()
  try {
    const target = multiaddr(address)
    const identified = new Promise<string[]>((resolve) => {
      host.addEventListener('peer:identify', (event) => resolve(event.detail.protocols))
    })
    await host.dial(target, { signal: AbortSignal.timeout(IDENTIFY_MS_MAX) })
    const protocols = await Promise.race([identified, new Promise<string[]>((resolve) => setTimeout(() => resolve([]), IDENTIFY_MS_MAX))])
    return protocols.includes(protocol)
  } finally {
    await host.stop()
  }
}

/** Child side: a leecher whose daemon the parent started (extra.repo). */
export const shoalRoles: SystemRoles = {
  async leecher({ seed, workDir, extra }) {
    const repo = extra['repo']
    if (repo === undefined) throw new Error('a Shoal leecher needs its daemon\'s repository')
    // Loaded now, so that on GO only the commands' own work remains.
    const { buildProgram } = await import('../src/cli/program.ts')
    const output = join(workDir, 'received')
    const shoal = async (args: string[]): Promise<void> => {
      const program = buildProgram({
        stdout: new Writable({ write: (_chunk, _encoding, callback) => callback() }),
        stdin: Readable.from([]),
        signal: new AbortController().signal,
      })
      try {
        await program.parseAsync(['node', 'shoal', '--repo', repo, ...args])
      } catch (error) {
        if (error instanceof CommanderError && error.code === 'commander.unknownCommand') {
          throw new BenchError('not-built', `shoal ${args[0]}: unknown command in this build`)
        }
        if (isShoalError(error)) throw new BenchError(error.code, `shoal ${args[0]}: ${error.message}`)
        throw error
      }
    }
    return {
      async fetch() {
        await shoal(['swarm', 'connect', String(seed['address'])])
        await shoal(['get', String(seed['cid']), '-o', output])
        return { kind: 'file', path: output }
      },
    }
  },
}
