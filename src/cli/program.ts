/**
 * The `shoal` commands. Each command that needs the node gets a ShoalApi from connect():
 * the daemon's when one runs, the repository opened directly otherwise.
 */
import { createWriteStream } from 'node:fs'
import { resolve } from 'node:path'
import type { Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { Command, Option } from 'commander'
import { CID_PROFILES, parseCidProfile } from '../core/content/cid-profile.ts'
import { isShoalError, ShoalError } from '../core/errors.ts'
import type { AddCandidate, ShoalApi } from '../node/api.ts'
import { parseBootstrapAddress } from '../node/addresses.ts'
import { getConfigValue, parseByteSize, readConfig, setConfigValue, writeConfig } from '../node/config.ts'
import { scanPaths } from '../node/fs-source.ts'
import { defaultRepoPath, initRepo, repoExists } from '../node/repo.ts'
import { SHOAL_VERSION } from '../version.ts'
import { connect, daemonUrl } from './connect.ts'
import { registerDhtCommand } from './dht-command.ts'
import { counted, formatBytes, startFetchProgress, startProgress, type Progress } from './progress.ts'
import { registerPubSubCommand } from './pubsub-command.ts'
import { parseInteger } from './integer-option.ts'
import { registerSimCommand } from './sim-command.ts'
import { writeTree } from './write-tree.ts'

/** Files read at once by an add from disk; an add through the daemon streams them one by one regardless. */
const LOCAL_FILE_CONCURRENCY = 16

export interface CliIo {
  stdout: Writable
  stdin: NodeJS.ReadableStream
  /** Aborted on Ctrl-C; long commands stop and undo what they started. */
  signal: AbortSignal
}

export function buildProgram(io: CliIo): Command {
  const print = (line: string) => io.stdout.write(`${line}\n`)
  const printJson = (value: unknown) => print(JSON.stringify(value, null, 2))

  const program = new Command('shoal')
    .description('Shoal: a peer-to-peer content network')
    .version(SHOAL_VERSION, '-v, --version')
    .option('--repo <dir>', 'repository folder (default: $SHOAL_REPO or ~/.shoal)')
    .showSuggestionAfterError()
    .exitOverride()
    .configureOutput({ outputError: (text, write) => write(`shoal: ${text.replace(/^error: /, '')}`) })

  const repoPath = (command: Command): string => {
    const repo = command.optsWithGlobals<{ repo?: string }>().repo
    return repo === undefined ? defaultRepoPath() : resolve(repo)
  }
  /** Runs `body` against the node and closes the connection afterwards. */
  const withApi = async <T>(command: Command, body: (api: ShoalApi) => Promise<T>): Promise<T> => {
    const api = await connect(repoPath(command))
    try {
      return await body(api)
    } finally {
      await api.close()
    }
  }
  const json = new Option('--json', 'print JSON')

  program
    .command('init')
    .description('create a repository: identity key, config, block and data stores')
    .addOption(json)
    .action(async (options: { json?: boolean }, command: Command) => {
      const path = repoPath(command)
      const { peerId } = await initRepo(path)
      if (options.json) printJson({ repoPath: path, peerId: peerId.toString() })
      else print(`initialised repository at ${path}\npeer id: ${peerId}`)
    })

  program
    .command('id')
    .description("print this node's peer id and, when the daemon runs, its addresses")
    .addOption(json)
    .action(async (options: { json?: boolean }, command: Command) => {
      const identity = await withApi(command, (api) => api.id())
      if (options.json) {
        printJson(identity)
        return
      }
      print(identity.peerId)
      if (identity.reachability !== null) print(`reachability: ${identity.reachability}`)
      for (const address of identity.listenAddresses) print(`listening: ${address}`)
      for (const address of identity.addresses) print(`announced: ${address}`)
    })

  program
    .command('add')
    .description('import files and folders (or - for stdin) into UnixFS, pin them, and print their root CIDs')
    .argument('<paths...>', 'files or folders to add')
    .addOption(new Option('--cid-profile <profile>', 'CID profile (IPIP-499)').choices(CID_PROFILES))
    .option('--hidden', 'include hidden files and folders (names starting with .)')
    .option('--no-pin', 'do not pin what is added')
    .option('-q, --quiet', 'print only the CIDs')
    .addOption(json)
    .action(async (paths: string[], options: { cidProfile?: string; hidden?: boolean; pin: boolean; quiet?: boolean; json?: boolean }, command: Command) => {
      const fromStdin = paths.length === 1 && paths[0] === '-'
      const source = fromStdin ? stdinSource(io.stdin) : await scanPaths(paths, { hidden: options.hidden })
      const progress = startProgress('adding', source.totalBytes)
      const candidates = withProgress(source.candidates(), progress)
      const roots = await withApi(command, (api) => api.add(candidates, {
        cidProfile: options.cidProfile === undefined ? undefined : parseCidProfile(options.cidProfile),
        pin: options.pin,
        fileConcurrency: LOCAL_FILE_CONCURRENCY,
        signal: io.signal,
      })).finally(() => progress.stop())
      if (options.json) printJson(roots)
      else for (const root of roots) print(options.quiet ? root.cid : `added ${root.cid} ${root.path}`.trimEnd())
    })

  program
    .command('cat')
    .description('write the content of a file to stdout (or to a file with -o)')
    .argument('<path>', 'CID, optionally followed by /path/inside')
    .option('-o, --output <file>', 'write to this file instead of stdout')
    .option('--offset <bytes>', 'start at this byte', parseCount)
    .option('--length <bytes>', 'write at most this many bytes', parseCount)
    .action(async (path: string, options: { output?: string; offset?: number; length?: number }, command: Command) => {
      await withApi(command, async (api) => {
        const chunks = api.cat(path, { offset: options.offset, length: options.length, signal: io.signal })
        if (options.output === undefined) {
          await pipeline(chunks, io.stdout, { end: false })
          return
        }
        const progress = startProgress('writing', (await api.stat(path)).size)
        await pipeline(counted(chunks, progress), createWriteStream(options.output)).finally(() => progress.stop())
      })
    })

  program
    .command('get')
    .description('write a file or folder tree to disk')
    .argument('<path>', 'CID, optionally followed by /path/inside')
    .option('-o, --output <path>', 'where to write it (default: ./<CID>)')
    .addOption(json)
    .action(async (path: string, options: { output?: string; json?: boolean }, command: Command) => {
      const output = resolve(options.output ?? path.split('/').filter(Boolean).at(-1) ?? path)
      await withApi(command, async (api) => {
        await fetchFromSwarm(api, path, io.signal)
        const stat = await api.stat(path)
        const progress = startProgress('writing', stat.type === 'file' ? stat.size : undefined)
        await writeTree(api, path, stat, output, { progress, signal: io.signal }).finally(() => progress.stop())
        if (options.json) printJson({ ...stat, output })
        else print(`saved ${stat.cid} to ${output}`)
      })
    })

  program
    .command('ls')
    .description('list a directory')
    .argument('<path>', 'CID, optionally followed by /path/inside')
    .addOption(json)
    .action(async (path: string, options: { json?: boolean }, command: Command) => {
      const entries = await withApi(command, (api) => api.ls(path))
      if (options.json) printJson(entries)
      else for (const entry of entries) print(`${entry.cid} ${String(entry.size).padStart(12)} ${entry.name}${entry.type === 'directory' ? '/' : entry.type === 'symlink' ? ` -> ${entry.target}` : ''}`)
    })

  program
    .command('stat')
    .description('show the type and size of a file, folder or symlink')
    .argument('<path>', 'CID, optionally followed by /path/inside')
    .addOption(json)
    .action(async (path: string, options: { json?: boolean }, command: Command) => {
      const stat = await withApi(command, (api) => api.stat(path))
      if (options.json) printJson(stat)
      else print(`${stat.cid} ${stat.type} ${stat.size} bytes${stat.target === undefined ? '' : ` -> ${stat.target}`}`)
    })

  const pin = program.command('pin').description('keep content from garbage collection')
  pin
    .command('add')
    .description('pin a CID (recursively by default); every block must be present')
    .argument('<cid>')
    .option('--direct', 'pin only this block, not the DAG under it')
    .addOption(json)
    .action(async (cid: string, options: { direct?: boolean; json?: boolean }, command: Command) => {
      const added = await withApi(command, (api) => api.pinAdd(cid, { recursive: !options.direct }))
      if (options.json) printJson(added)
      else print(`pinned ${added.cid} ${added.type}`)
    })
  pin
    .command('rm')
    .description('unpin a CID')
    .argument('<cid>')
    .addOption(json)
    .action(async (cid: string, options: { json?: boolean }, command: Command) => {
      const removed = await withApi(command, (api) => api.pinRm(cid))
      if (options.json) printJson(removed)
      else print(`unpinned ${removed.cid}`)
    })
  pin
    .command('ls')
    .description('list pins')
    .addOption(json)
    .action(async (options: { json?: boolean }, command: Command) => {
      const pins = await withApi(command, (api) => api.pinLs())
      if (options.json) printJson(pins)
      else for (const entry of pins) print(`${entry.cid} ${entry.type}`)
    })

  program
    .command('gc')
    .description('remove every block that no pin keeps')
    .addOption(json)
    .action(async (options: { json?: boolean }, command: Command) => {
      const result = await withApi(command, (api) => api.gc())
      if (options.json) printJson(result)
      else print(`removed ${result.removedBlockCount} blocks, ${formatBytes(result.removedByteCount)}`)
    })

  const repo = program.command('repo').description('the repository')
  repo
    .command('stat')
    .description('blocks, bytes, quota and pins')
    .addOption(json)
    .action(async (options: { json?: boolean }, command: Command) => {
      const stat = await withApi(command, (api) => api.repoStat())
      if (options.json) {
        printJson(stat)
        return
      }
      print(`path:   ${stat.path}`)
      print(`blocks: ${stat.blockCount}`)
      print(`bytes:  ${stat.byteCount} (${formatBytes(stat.byteCount)})`)
      print(`quota:  ${stat.quotaBytes === null ? 'none' : `${stat.quotaBytes} (${formatBytes(stat.quotaBytes)})`}`)
      print(`pins:   ${stat.pinCount}`)
    })
  repo
    .command('verify')
    .description('read every block and check it against its hash; corrupt blocks are moved out')
    .addOption(json)
    .action(async (options: { json?: boolean }, command: Command) => {
      const result = await withApi(command, (api) => api.repoVerify())
      if (options.json) printJson(result)
      else {
        for (const cid of result.corrupt) print(`corrupt: ${cid}`)
        print(`verified ${result.blockCount} blocks, ${result.corrupt.length} corrupt`)
      }
      if (result.corrupt.length > 0) process.exitCode = 1
    })

  const config = program.command('config').description('read and change config.json (a running daemon applies changes at restart)')
  config
    .command('get')
    .argument('<key>', 'dotted key, e.g. storage.quotaBytes')
    .addOption(json)
    .action(async (key: string, options: { json?: boolean }, command: Command) => {
      const value = getConfigValue(await readConfig(await existingRepo(command)), key)
      print(typeof value === 'string' && !options.json ? value : JSON.stringify(value, null, 2))
    })
  config
    .command('set')
    .argument('<key>', 'dotted key, e.g. storage.quotaBytes')
    .argument('<value>', 'JSON value, or plain text for a string')
    .action(async (key: string, value: string, _options: unknown, command: Command) => {
      const path = await existingRepo(command)
      await writeConfig(path, setConfigValue(await readConfig(path), key, value))
      if ((await daemonUrl(path)) !== undefined) print('the daemon applies this at its next start')
    })
  config
    .command('show')
    .description('print the whole config')
    .action(async (_options: unknown, command: Command) => {
      printJson(await readConfig(await existingRepo(command)))
    })

  program
    .command('peers')
    .description('list connected peers: their connections, direction, kind and latency')
    .addOption(json)
    .action(async (options: { json?: boolean }, command: Command) => {
      const peers = await withApi(command, (api) => api.peers())
      if (options.json) {
        printJson(peers)
        return
      }
      for (const peer of peers) {
        const latency = peer.latencyMs === null ? '-' : `${Math.round(peer.latencyMs)} ms`
        for (const connection of peer.connections) {
          print(`${peer.peerId} ${connection.remoteAddress} ${connection.direction} ${connection.relayed ? 'relayed' : 'direct'} ${latency}`)
        }
      }
      if (peers.length === 0) print('no peers connected')
    })

  const swarm = program.command('swarm').description('connections to peers, and the transfer ledger')
  swarm
    .command('connect')
    .description('connect to a peer (through a relay if that is the way to it), and say how')
    .argument('<address>', 'a multiaddr such as /ip4/192.0.2.1/tcp/4001/p2p/12D3KooW..., or a peer id to look up in the DHT')
    .option('--wait-direct <ms>', 'for a relayed connection, wait this long for the upgrade to a direct one', (text) => parseInteger(text, '--wait-direct', 0, 60_000))
    .addOption(json)
    .action(async (address: string, options: { waitDirect?: number; json?: boolean }, command: Command) => {
      const result = await withApi(command, (api) => api.swarmConnect(address, { waitDirectMs: options.waitDirect }))
      if (options.json) {
        printJson(result)
        return
      }
      const ms = (value: number): string => `${Math.round(value)} ms`
      const parts = [`connected to ${result.peerId} ${result.relayed ? 'through a relay' : 'directly'} in ${ms(result.connectMs)}`]
      if (result.firstByteMs !== null) parts.push(`first byte at ${ms(result.firstByteMs)}`)
      if (result.upgradeMs !== null) parts.push(`direct ${ms(result.upgradeMs)} after the relayed connection (attempt ${result.upgradeAttempts})`)
      else if (result.relayed && options.waitDirect !== undefined) parts.push(`still relayed after ${options.waitDirect} ms (${result.upgradeAttempts} upgrade attempts)`)
      print(parts.join('; '))
    })
  swarm
    .command('disconnect')
    .description('close every connection to a peer')
    .argument('<peer>', 'peer id')
    .action(async (peer: string, _options: unknown, command: Command) => {
      await withApi(command, (api) => api.swarmDisconnect(peer))
      print(`disconnected from ${peer}`)
    })
  swarm
    .command('ledger')
    .description('bytes each peer gave us and took from us in transfers, and its misbehaviours')
    .addOption(json)
    .action(async (options: { json?: boolean }, command: Command) => {
      const entries = await withApi(command, (api) => api.swarmLedger())
      if (options.json) {
        printJson(entries)
        return
      }
      for (const entry of entries) {
        const misbehaviours = Object.entries(entry.misbehaviours).map(([reason, count]) => ` ${reason}=${count}`).join('')
        print(`${entry.peer} received ${formatBytes(entry.bytesReceived)} sent ${formatBytes(entry.bytesSent)}${misbehaviours}`)
      }
    })

  program
    .command('stats')
    .description('connections, streams, traffic by protocol, refusals by reason (the figures of GET /metrics)')
    .addOption(json)
    .action(async (options: { json?: boolean }, command: Command) => {
      const stats = await withApi(command, (api) => api.stats())
      if (options.json) {
        printJson(stats)
        return
      }
      for (const [metric, values] of Object.entries(stats)) {
        const entries = Object.entries(values)
        if (entries.length === 0) print(`${metric} 0`)
        for (const [labels, value] of entries) print(`${metric}${labels === '' ? '' : `{${labels}}`} ${value}`)
      }
    })

  const bootstrap = program.command('bootstrap').description('the peers a starting daemon dials (config network.bootstrap)')
  bootstrap
    .command('add')
    .argument('<multiaddr...>', 'addresses ending in /p2p/<peer id>')
    .action(async (addresses: string[], _options: unknown, command: Command) => {
      for (const address of addresses) parseBootstrapAddress(address)
      const path = await existingRepo(command)
      const current = await readConfig(path)
      const added = addresses.filter((address) => !current.network.bootstrap.includes(address))
      await writeConfig(path, { ...current, network: { ...current.network, bootstrap: [...current.network.bootstrap, ...added] } })
      for (const address of added) print(`added ${address}`)
      if ((await daemonUrl(path)) !== undefined) print('the daemon dials them at its next start; `shoal swarm connect` dials now')
    })
  bootstrap
    .command('rm')
    .argument('<multiaddr...>', 'addresses to remove, or "all"')
    .action(async (addresses: string[], _options: unknown, command: Command) => {
      const path = await existingRepo(command)
      const current = await readConfig(path)
      const all = addresses.length === 1 && addresses[0] === 'all'
      const missing = all ? [] : addresses.filter((address) => !current.network.bootstrap.includes(address))
      if (missing.length > 0) throw new ShoalError('NOT_FOUND', `not in the bootstrap list: ${missing.join(' ')}`)
      const kept = all ? [] : current.network.bootstrap.filter((address) => !addresses.includes(address))
      await writeConfig(path, { ...current, network: { ...current.network, bootstrap: kept } })
      for (const address of current.network.bootstrap.filter((address) => !kept.includes(address))) print(`removed ${address}`)
    })
  bootstrap
    .command('ls')
    .addOption(json)
    .action(async (options: { json?: boolean }, command: Command) => {
      const list = (await readConfig(await existingRepo(command))).network.bootstrap
      if (options.json) printJson(list)
      else for (const address of list) print(address)
    })

  program
    .command('daemon')
    .description('run the node: join the network and serve the HTTP API')
    .option('--api <host:port>', 'API address (default: config api.address, 127.0.0.1:5080)')
    .option('--listen <multiaddr...>', 'listen addresses, replacing config network.listen')
    .option('--bootstrap <multiaddr...>', 'peers to dial at start, besides config network.bootstrap')
    .option('--no-mdns', 'do not discover or announce peers on the LAN with mDNS')
    .option('--init', 'create the repository first if it does not exist')
    .option('--max-upload <rate>', 'swarm upload limit per second, e.g. 10MB (default: config swarm.uploadBytesPerSecondMax, none)')
    .option('--max-download <rate>', 'swarm download limit per second, e.g. 50MB (default: config swarm.downloadBytesPerSecondMax, none)')
    .action(async (options: { api?: string; listen?: string[]; bootstrap?: string[]; mdns: boolean; init?: boolean; maxUpload?: string; maxDownload?: string }, command: Command) => {
      const path = repoPath(command)
      const uploadBytesPerSecondMax = options.maxUpload === undefined ? undefined : parseByteSize(options.maxUpload, '--max-upload')
      const downloadBytesPerSecondMax = options.maxDownload === undefined ? undefined : parseByteSize(options.maxDownload, '--max-download')
      if (options.init && !(await repoExists(path))) {
        const { peerId } = await initRepo(path)
        print(`initialised repository at ${path}\npeer id: ${peerId}`)
      }
      for (const address of options.bootstrap ?? []) parseBootstrapAddress(address)
      // Loaded here: the HTTP server's and libp2p's modules cost every other command memory.
      const { runDaemon } = await import('./daemon.ts')
      await runDaemon(path, {
        api: options.api,
        network: { listen: options.listen, bootstrap: options.bootstrap, mdns: options.mdns, uploadBytesPerSecondMax, downloadBytesPerSecondMax },
        signal: io.signal,
        print,
      })
    })

  registerDhtCommand(program, { stdout: io.stdout, print, printJson, withApi })
  registerPubSubCommand(program, { stdout: io.stdout, stdin: io.stdin, signal: io.signal, print, printJson, withApi })
  registerSimCommand(program, print, io.signal)

  const existingRepo = async (command: Command): Promise<string> => {
    const path = repoPath(command)
    if (!(await repoExists(path))) throw new ShoalError('REPO_MISSING', `no repository at ${path}; run: shoal init`)
    return path
  }

  return program
}

/**
 * With a daemon, `get` first downloads the content from the swarm (a progress bar on a
 * terminal: bytes, rate, peers, ETA); offline, the content must already be here.
 */
async function fetchFromSwarm(api: ShoalApi, path: string, signal: AbortSignal): Promise<void> {
  const root = path.replace(/^\/?ipfs\//, '').split('/').find((segment) => segment.length > 0) ?? path
  const progress = startFetchProgress()
  try {
    await api.fetch(root, { signal, onProgress: (update) => progress.update(update) })
  } catch (error) {
    if (!isShoalError(error, 'OFFLINE')) throw error
  } finally {
    progress.stop()
  }
}

function parseCount(text: string): number {
  const value = Number(text)
  if (!Number.isSafeInteger(value) || value < 0) throw new ShoalError('INVALID_ARGUMENT', `expected a non-negative integer, got '${text}'`)
  return value
}

function stdinSource(stdin: NodeJS.ReadableStream): { totalBytes: undefined; candidates(): AsyncIterable<AddCandidate> } {
  return {
    totalBytes: undefined,
    async *candidates() {
      yield { kind: 'file', path: '', content: stdin as AsyncIterable<Uint8Array> }
    },
  }
}

async function* withProgress(candidates: AsyncIterable<AddCandidate>, progress: Progress): AsyncIterable<AddCandidate> {
  for await (const candidate of candidates) {
    yield candidate.kind === 'file' ? { ...candidate, content: counted(candidate.content, progress) } : candidate
  }
}
