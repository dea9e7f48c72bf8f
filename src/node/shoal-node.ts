/**
 * ShoalNode: one node over one repository — the library API (ShoalApi) in-process.
 * Composes the block store, the pin store, the UnixFS importer/exporter and, in the
 * daemon, the network (startNetwork) with the DHT and pub/sub; the swarm joins it in a later issue.
 * The only code that reads the clock.
 *
 * Adds, fetches and garbage collection share the repository's read/write lock (gcLock):
 * adds run concurrently (read side), gc runs alone (write side), so gc never sweeps blocks
 * of an add whose pin is not yet written.
 */
import { importer, type ImportCandidate } from 'ipfs-unixfs-importer'
import { exporter, type UnixFSEntry } from 'ipfs-unixfs-exporter'
import * as dagPb from '@ipld/dag-pb'
import type { CID } from 'multiformats/cid'
import { blockKey, DAG_PB_CODE, parseCid, parseUnixFsCid } from '../core/content/cid.ts'
import { isShoalError, ShoalError } from '../core/errors.ts'
import type { BlockStore } from '../store/block-store.ts'
import type { PinStore } from '../store/pin-store.ts'
import { SHOAL_AGENT_VERSION } from '../version.ts'
import type {
  AddCandidate, AddedRoot, AddOptions, CatOptions, DhtPeer, DhtQueryResult, DhtTable, DirectoryEntry, EntryStat, FetchOptions, FetchResult, GcResult, LedgerEntry,
  ConnectResult, NodeIdentity, NodeStats, PeerInfo, PinInfo, PubSubPublished, PubSubSubscribeOptions, PubSubSubscription, RepoStat, ShoalApi,
  VerifyResult,
} from './api.ts'
import type { Network, NetworkOptions } from './network.ts'
import { readFile } from './file-reader.ts'
import { Repo } from './repo.ts'

export const ADD_PATH_LENGTH_MAX = 4096
export const DHT_PROVIDERS_DEFAULT = 20
export const DHT_PROVIDERS_MAX = 1_000

export class ShoalNode implements ShoalApi {
  readonly repo: Repo
  readonly #blocks: BlockStore
  readonly #pins: PinStore
  #network: Network | undefined

  private constructor(repo: Repo) {
    this.repo = repo
    this.#blocks = repo.blocks
    this.#pins = repo.datastore.pins
  }

  static async open(repoPath: string): Promise<ShoalNode> {
    return new ShoalNode(await Repo.open(repoPath))
  }

  async id(): Promise<NodeIdentity> {
    const { peerId, privateKey } = this.repo.identity
    return {
      peerId: peerId.toString(),
      publicKey: Buffer.from(privateKey.publicKey.raw).toString('base64'),
      agentVersion: SHOAL_AGENT_VERSION,
      repoPath: this.repo.path,
      listenAddresses: this.#network?.listenAddresses() ?? [],
      addresses: this.#network?.announcedAddresses() ?? [],
      reachability: this.#network?.nat.reachability ?? null,
    }
  }

  /** Joins the network; the daemon does this, one-shot commands stay offline. */
  async startNetwork(options: NetworkOptions = {}): Promise<Network> {
    if (this.#network !== undefined) throw new Error('the network is already started')
    // Loaded here: libp2p costs one-shot commands, which stay offline, 15 MB or more.
    const { Network } = await import('./network.ts')
    this.#network = await Network.start(this.repo, options)
    // What this node holds is announced again at each start (and republished by the DHT).
    const roots: Uint8Array[] = []
    for await (const pin of this.#pins.list()) if (pin.type === 'recursive') roots.push(pin.cid.multihash.bytes)
    this.#network.dht.provideInBackground(roots)
    return this.#network
  }

  async peers(): Promise<PeerInfo[]> {
    return this.#online().peers()
  }

  swarmConnect(address: string, options: { waitDirectMs?: number } = {}): Promise<ConnectResult> {
    return this.#online().connect(address, options.waitDirectMs ?? 0)
  }

  swarmDisconnect(peerId: string): Promise<void> {
    return this.#online().disconnect(peerId)
  }

  stats(): Promise<NodeStats> {
    return this.#online().stats()
  }

  dhtFindPeer(peerId: string): Promise<DhtPeer & DhtQueryResult> {
    return this.#online().dht.findPeer(peerId)
  }

  dhtFindProviders(cid: string, options: { max?: number } = {}): Promise<{ providers: DhtPeer[] } & DhtQueryResult> {
    const max = options.max ?? DHT_PROVIDERS_DEFAULT
    if (!Number.isInteger(max) || max < 1 || max > DHT_PROVIDERS_MAX) throw new ShoalError('INVALID_ARGUMENT', `--max must be an integer from 1 to ${DHT_PROVIDERS_MAX}`)
    return this.#online().dht.findProviders(parseCid(cid).multihash.bytes, max)
  }

  dhtProvide(cid: string): Promise<{ storedCount: number } & DhtQueryResult> {
    return this.#online().dht.provide(parseCid(cid).multihash.bytes)
  }

  dhtGet(key: string): Promise<{ value: Uint8Array } & DhtQueryResult> {
    return this.#online().dht.getValue(key)
  }

  dhtPut(key: string, value: Uint8Array): Promise<{ storedCount: number } & DhtQueryResult> {
    return this.#online().dht.putValue(key, value)
  }

  async dhtTable(): Promise<DhtTable> {
    return this.#online().dht.table()
  }

  async fetch(cidText: string, options: FetchOptions = {}): Promise<FetchResult> {
    const cid = parseUnixFsCid(cidText)
    const network = this.#online()
    // Blocks arriving are not pinned until the end: gc must not sweep them meanwhile.
    const release = await this.repo.gcLock.readLock()
    try {
      return await network.swarm.fetch(cid, options)
    } finally {
      release()
    }
  }

  async swarmLedger(): Promise<LedgerEntry[]> {
    return this.#online().swarm.ledger()
  }

  async pubsubPublish(topic: string, data: Uint8Array): Promise<PubSubPublished> {
    return this.#online().pubsub.publish(topic, data)
  }

  async pubsubTopics(): Promise<string[]> {
    return this.#online().pubsub.topics()
  }

  async pubsubPeers(topic: string): Promise<string[]> {
    return this.#online().pubsub.peers(topic)
  }

  async pubsubSubscribe(topic: string, options: PubSubSubscribeOptions = {}): Promise<PubSubSubscription> {
    return this.#online().pubsub.subscription(topic, { signal: options.signal })
  }

  #online(): Network {
    if (this.#network === undefined) throw new ShoalError('OFFLINE', 'the node is offline: start it with `shoal daemon`')
    return this.#network
  }

  async add(candidates: AsyncIterable<AddCandidate>, options: AddOptions = {}): Promise<AddedRoot[]> {
    const written: CID[] = []
    const blocks = this.#blocks
    const storage = {
      async put(cid: CID, bytes: Uint8Array): Promise<CID> {
        if (await blocks.put(cid, bytes)) written.push(cid)
        return cid
      },
    }
    const release = await this.repo.gcLock.readLock()
    try {
      const roots: AddedRoot[] = []
      const source = importCandidates(candidates, options.signal)
      const imported = importer(source, storage, {
        profile: options.cidProfile ?? this.repo.config.import.cidProfile,
        fileImportConcurrency: options.fileConcurrency ?? 1,
      })
      for await (const entry of imported) {
        const path = entry.path ?? ''
        if (!path.includes('/')) roots.push({ path, cid: entry.cid.toString(), size: Number(entry.size) })
      }
      options.signal?.throwIfAborted()
      await this.#blocks.flush()
      if (options.pin ?? true) {
        for (const root of roots) await this.#pins.add(parseCid(root.cid), 'recursive', Date.now())
      }
      // A daemon announces what it adds: the roots, which fetches start from.
      this.#network?.dht.provideInBackground(roots.map((root) => parseCid(root.cid).multihash.bytes))
      release()
      return roots
    } catch (error) {
      release()
      await this.#sweep(written)
      if (options.signal?.aborted) throw new ShoalError('ABORTED', 'add interrupted; nothing was added', { cause: error })
      throw error
    }
  }

  async *cat(path: string, options: CatOptions = {}): AsyncIterable<Uint8Array> {
    const { offset, length, signal } = options
    if ((offset ?? 0) < 0 || (length ?? 0) < 0) throw new ShoalError('INVALID_ARGUMENT', 'offset and length must not be negative')
    const entry = await this.#resolve(path, signal)
    if (entry.type === 'directory') throw new ShoalError('NOT_A_FILE', `${path} is a directory, not a file`)
    const root = parseCid(path.replace(/^\/?ipfs\//, '').split('/').find((segment) => segment.length > 0) ?? '')
    const swarm = this.#network?.swarm
    yield* readFile(entry.cid, (cid) => (swarm === undefined ? this.#blocks.get(cid) : swarm.block(root, cid, signal)), { offset, length, signal })
  }

  async stat(path: string): Promise<EntryStat> {
    return describe(await this.#resolve(path))
  }

  async ls(path: string): Promise<DirectoryEntry[]> {
    const entry = await this.#resolve(path)
    if (entry.type !== 'directory') throw new ShoalError('NOT_A_DIRECTORY', `${path} is not a directory`)
    const listing: DirectoryEntry[] = []
    for await (const child of entry.entries()) {
      const stat = describe(await exporter(child.cid, this.#exportStorage()))
      listing.push({ name: child.name, ...stat })
    }
    return listing
  }

  async pinAdd(cidText: string, options: { recursive?: boolean } = {}): Promise<PinInfo> {
    const cid = parseUnixFsCid(cidText)
    const type = options.recursive ?? true ? 'recursive' : 'direct'
    // A pin promises the content is here: check every block it keeps.
    if (type === 'recursive') await this.#walk(cid, new Set(), { missing: 'throw' })
    else await this.#blocks.get(cid)
    await this.#pins.add(cid, type, Date.now())
    return { cid: cid.toString(), type }
  }

  async pinRm(cidText: string): Promise<PinInfo> {
    const pin = await this.#pins.remove(parseCid(cidText))
    return { cid: pin.cid.toString(), type: pin.type }
  }

  async pinLs(): Promise<PinInfo[]> {
    const pins: PinInfo[] = []
    for await (const pin of this.#pins.list()) pins.push({ cid: pin.cid.toString(), type: pin.type })
    return pins
  }

  async gc(): Promise<GcResult> {
    const release = await this.repo.gcLock.writeLock()
    try {
      const live = await this.#markPinned()
      const result: GcResult = { removedBlockCount: 0, removedByteCount: 0 }
      for await (const cid of this.#blocks.cids()) {
        if (live.has(blockKey(cid))) continue
        result.removedByteCount += await this.#blocks.delete(cid)
        result.removedBlockCount += 1
      }
      if (result.removedBlockCount > 0) await this.#network?.swarm.blocksRemoved()
      return result
    } finally {
      release()
    }
  }

  async repoStat(): Promise<RepoStat> {
    const { blockCount, byteCount, quotaBytes } = await this.#blocks.stat()
    let pinCount = 0
    for await (const _ of this.#pins.list()) pinCount += 1
    return { path: this.repo.path, blockCount, byteCount, quotaBytes, pinCount }
  }

  async repoVerify(): Promise<VerifyResult> {
    const result: VerifyResult = { blockCount: 0, corrupt: [] }
    for await (const cid of this.#blocks.cids()) {
      result.blockCount += 1
      try {
        await this.#blocks.get(cid)
      } catch (error) {
        if (!isShoalError(error, 'BLOCK_CORRUPT')) throw error
        result.corrupt.push(cid.toString())
      }
    }
    return result
  }

  async close(): Promise<void> {
    await this.#network?.stop()
    this.#network = undefined
    const release = await this.repo.gcLock.writeLock()
    try {
      await this.repo.close()
    } finally {
      release()
    }
  }

  /** Deletes the given blocks unless a pin keeps them: the undo of a failed add. */
  async #sweep(cids: CID[]): Promise<void> {
    if (cids.length === 0) return
    const release = await this.repo.gcLock.writeLock()
    try {
      const live = await this.#markPinned()
      for (const cid of cids) if (!live.has(blockKey(cid))) await this.#blocks.delete(cid)
    } finally {
      release()
    }
  }

  async #markPinned(): Promise<Set<string>> {
    const live = new Set<string>()
    for await (const pin of this.#pins.list()) {
      if (pin.type === 'direct') live.add(blockKey(pin.cid))
      else await this.#walk(pin.cid, live, { missing: 'skip' })
    }
    return live
  }

  /**
   * Adds the keys of every block of the DAG under `root` to `seen`. Missing or corrupt
   * blocks throw with 'throw' (pinning needs them all) and are passed over with 'skip'
   * (gc must keep whatever of a pinned DAG is still there).
   */
  async #walk(root: CID, seen: Set<string>, options: { missing: 'throw' | 'skip' }): Promise<void> {
    const stack: CID[] = [root]
    for (let cid = stack.pop(); cid !== undefined; cid = stack.pop()) {
      const key = blockKey(cid)
      if (seen.has(key)) continue
      seen.add(key)
      if (cid.code !== DAG_PB_CODE) {
        if (options.missing === 'throw' && !(await this.#blocks.has(cid))) throw new ShoalError('NOT_FOUND', `block ${cid} not found`)
        continue
      }
      let bytes: Uint8Array
      try {
        bytes = await this.#blocks.get(cid)
      } catch (error) {
        if (options.missing === 'skip' && (isShoalError(error, 'NOT_FOUND') || isShoalError(error, 'BLOCK_CORRUPT'))) continue
        throw error
      }
      for (const link of dagPb.decode(bytes).Links) stack.push(link.Hash)
    }
  }

  async #resolve(path: string, signal?: AbortSignal): Promise<UnixFSEntry> {
    const segments = path.replace(/^\/?ipfs\//, '').split('/').filter((segment) => segment.length > 0)
    const cid = parseUnixFsCid(segments[0] ?? '')
    try {
      return await exporter([cid.toString(), ...segments.slice(1)].join('/'), this.#exportStorage(cid, signal), { signal })
    } catch (error) {
      if (isShoalError(error)) throw error
      if ((error as { name?: string }).name === 'NotFoundError') {
        throw new ShoalError('PATH_NOT_FOUND', `no such path: ${path}`)
      }
      throw error
    }
  }

  /**
   * Blocks for the exporter. In the daemon, a block that is not stored is fetched from the
   * swarm with the rest of the content under `root`, in file order, so that a read streams
   * while the download runs.
   */
  #exportStorage(root?: CID, signal?: AbortSignal): { get(cid: CID): AsyncGenerator<Uint8Array> } {
    const blocks = this.#blocks
    const swarm = root === undefined ? undefined : this.#network?.swarm
    return {
      async *get(cid: CID) {
        yield swarm === undefined ? await blocks.get(cid) : await swarm.block(root!, cid, signal)
      },
    }
  }
}

/** Turns add candidates into importer candidates, checking paths and the abort signal as they pass. */
async function* importCandidates(candidates: AsyncIterable<AddCandidate>, signal: AbortSignal | undefined): AsyncGenerator<ImportCandidate> {
  for await (const candidate of candidates) {
    signal?.throwIfAborted()
    checkAddPath(candidate.path)
    if (candidate.kind === 'directory') yield { path: candidate.path }
    else if (candidate.kind === 'symlink') yield { path: candidate.path, link: candidate.target }
    else yield { path: candidate.path, content: abortable(candidate.content, signal) }
  }
}

/** Passes content through until the signal fires, which also ends a read that is waiting (on a pipe, say). */
async function* abortable(content: AsyncIterable<Uint8Array>, signal: AbortSignal | undefined): AsyncGenerator<Uint8Array> {
  if (signal === undefined) return yield* content
  const iterator = content[Symbol.asyncIterator]()
  try {
    for (let next = await nextUnlessAborted(iterator, signal); next.done !== true; next = await nextUnlessAborted(iterator, signal)) {
      yield next.value
    }
  } finally {
    // Not awaited: a source blocked in a read may only settle once it is destroyed.
    void iterator.return?.()
  }
}

/**
 * One read raced against the signal. (Not Promise.race with one long-lived abort promise:
 * each race would leave a reaction on it holding the chunk read, and nothing would be freed.)
 */
function nextUnlessAborted<T>(iterator: AsyncIterator<T>, signal: AbortSignal): Promise<IteratorResult<T>> {
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(signal.reason)
    if (signal.aborted) return onAbort()
    signal.addEventListener('abort', onAbort, { once: true })
    iterator.next().then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort))
  })
}

function checkAddPath(path: string): void {
  if (path.length > ADD_PATH_LENGTH_MAX) throw new ShoalError('INVALID_ARGUMENT', `path of ${path.length} characters is longer than ${ADD_PATH_LENGTH_MAX}`)
  if (path === '') return
  const segments = path.split('/')
  if (segments.some((segment) => segment === '' || segment === '.' || segment === '..')) {
    throw new ShoalError('INVALID_ARGUMENT', `invalid path '${path}': must be relative, without empty, '.' or '..' segments`)
  }
}

function describe(entry: UnixFSEntry): EntryStat {
  const cid = entry.cid.toString()
  switch (entry.type) {
    case 'directory':
      return { cid, type: 'directory', size: 0 }
    case 'file':
      if (entry.unixfs.type === 'symlink') {
        return { cid, type: 'symlink', size: 0, target: new TextDecoder().decode(entry.unixfs.data ?? new Uint8Array()) }
      }
      return { cid, type: 'file', size: Number(entry.size) }
    case 'raw':
    case 'identity':
      // A single-block file under raw leaves is a bare raw block: still a file to the user.
      return { cid, type: 'file', size: Number(entry.size) }
    case 'object':
      throw new ShoalError('NOT_A_FILE', `${cid} is not UnixFS content`)
  }
}
