/**
 * Swarm: content transfer in the daemon. Runs the swarm core (core/swarm) over the host with
 * the protocol driver on /shoal/swarm/1.0.0 and does for it what needs the store, the DHT or
 * pub/sub:
 *   - verifies every received block against its CID before it is stored (a mismatch is
 *     reported 'corrupt' and the core bans the sender), decodes inner nodes' links;
 *   - reads blocks to serve (the store verifies them on read), no faster than the peer's
 *     stream drains, so that a slow peer never makes queued blocks pile up in memory;
 *   - answers whether it holds a whole content (a complete DAG) to serve;
 *   - finds sources: DHT providers of the root, and peers that announce on the content's
 *     topic (`shoal/content/<cid>`) that they hold it;
 *   - on completion: pins (unless told not to), provides the root in the DHT, announces it
 *     on its topic, and keeps serving it within the seeding limits;
 *   - keeps the ledger: bytes sent to and received from each peer, and bad blocks, saved
 *     in the datastore.
 * Reads the clock for the driver.
 */
import * as dagPb from '@ipld/dag-pb'
import { UnixFS } from 'ipfs-unixfs'
import { CID } from 'multiformats/cid'
import type { Mortice } from 'mortice'
import { checkBlock, DAG_PB_CODE, RAW_CODE } from '../core/content/cid.ts'
import { isShoalError, ShoalError } from '../core/errors.ts'
import { Prng } from '../core/prng.ts'
import { asPeerId, type NetworkInput, type PeerId } from '../core/sans-io.ts'
import { Bitfield } from '../core/swarm/bitfield.ts'
import { swarmConfig } from '../core/swarm/config.ts'
import { asContentKey, type ContentKey, type SwarmMessage } from '../core/swarm/messages.ts'
import { type DagChild, type FetchOrder, type SessionProgress, SwarmCore, type SwarmAction, type SwarmEvent, type SwarmInput } from '../core/swarm/swarm.ts'
import type { ShoalHost } from '../net/host.ts'
import type { DriverMetrics } from '../net/metrics.ts'
import { type HostAction, ProtocolDriver } from '../net/protocol-driver.ts'
import type { BlockStore } from '../store/block-store.ts'
import type { Ledger } from '../store/ledger.ts'
import type { PinStore } from '../store/pin-store.ts'
import { swarmCodec } from '../wire/swarm.ts'
import type { FetchProgress, FetchResult, LedgerEntry } from './api.ts'
import type { Config } from './config.ts'
import type { Dht } from './dht.ts'
import type { PubSub } from './pubsub.ts'

export interface FetchOptions {
  order?: FetchOrder
  /** Pin the content once complete (default true). */
  pin?: boolean
  signal?: AbortSignal
  onProgress?: (progress: FetchProgress) => void
}

/** Between progress events: they go to people and event streams at least every 250 ms, event-loop delays included. */
const PROGRESS_INTERVAL_MS = 100
/** Frames queued for a peer past which reads for it wait: two blocks in flight keep a stream busy. */
const SEND_QUEUE_BYTES_FOR_READS = 2 * 1024 * 1024 + 4096
const SOURCES_PER_SEARCH = 20
const COMPLETE_CONTENT_CACHE_MAX = 64
const LEDGER_SAVE_INTERVAL_MS = 30_000
/** Announcements on a content topic: a peer id and a few addresses. */
const ANNOUNCEMENT_BYTES_MAX = 4_096

interface Waiter {
  resolve: (result: FetchResult) => void
  reject: (error: Error) => void
  onProgress: ((progress: FetchProgress) => void) | undefined
  pin: boolean
}

interface ActiveFetch {
  root: CID
  startedMs: number
  waiters: Set<Waiter>
  /** File size from the root's UnixFS data, once known. */
  totalBytes: number | undefined
  unsubscribe: () => void
  pin: boolean
}

interface Seeding {
  size: number
  uploadedBytes: number
  untilMs: number
}

type SwarmDriver = ProtocolDriver<SwarmMessage, SwarmInput, SwarmAction>
/** What the node tells the core; the driver brings the network's inputs. */
type HostInput = Exclude<SwarmInput, NetworkInput<SwarmMessage>>

/** What the swarm keeps and reads: the repository's stores, and its gc lock (Repo.gcLock). */
export interface SwarmStores {
  blocks: BlockStore
  pins: PinStore
  ledger: Ledger
  gcLock: Mortice
}

export class Swarm {
  readonly core: SwarmCore
  readonly #host: ShoalHost
  readonly #blocks: BlockStore
  readonly #gcLock: Mortice
  readonly #pins: PinStore
  readonly #dht: Dht
  readonly #pubsub: PubSub
  readonly #ledger: Ledger
  readonly #settings: Config['swarm']
  readonly #self: PeerId
  #driver: SwarmDriver | undefined
  readonly #fetches = new Map<ContentKey, ActiveFetch>()
  /** Block waiters for streaming reads (cat while downloading), by CID text. */
  readonly #blockWaiters = new Map<string, Set<() => void>>()
  /** Reads held back while a peer's send queue is full. */
  readonly #heldReads = new Map<PeerId, Array<Extract<SwarmAction, { type: 'read' }>>>()
  /** Roots whose DAG is known to be whole here, with their leaves and inner nodes. */
  readonly #completeContent = new Map<ContentKey, { leaves: string[]; nodes: string[] }>()
  readonly #seeding = new Map<ContentKey, Seeding>()
  readonly #stoppedSeeding = new Set<ContentKey>()
  readonly #ledgerTimer: NodeJS.Timeout
  #stopped = false

  private constructor(host: ShoalHost, stores: SwarmStores, dht: Dht, pubsub: PubSub, settings: Config['swarm']) {
    this.#host = host
    this.#blocks = stores.blocks
    this.#pins = stores.pins
    this.#gcLock = stores.gcLock
    this.#dht = dht
    this.#pubsub = pubsub
    this.#ledger = stores.ledger
    this.#settings = settings
    this.#self = asPeerId(host.peerId.toString())
    this.core = new SwarmCore({
      self: this.#self,
      prng: Prng.fromSeed(`${this.#self}:${Date.now()}`).fork('swarm'),
      config: swarmConfig({
        uploadBytesPerSecondMax: settings.uploadBytesPerSecondMax ?? Infinity,
        downloadBytesPerSecondMax: settings.downloadBytesPerSecondMax ?? Infinity,
        peerUploadBytesPerSecondMax: settings.peerUploadBytesPerSecondMax ?? Infinity,
        peerDownloadBytesPerSecondMax: settings.peerDownloadBytesPerSecondMax ?? Infinity,
        fetchesMax: settings.fetchesMax,
        peersPerSessionMax: settings.peersPerSessionMax,
        unchokeSlots: settings.unchokeSlots,
        seedUnchoke: settings.seedUnchoke,
        progressIntervalMs: PROGRESS_INTERVAL_MS,
      }),
    })
    this.#ledgerTimer = setInterval(() => void this.#ledger.save().catch(() => {}), LEDGER_SAVE_INTERVAL_MS).unref()
  }

  static async start(host: ShoalHost, stores: SwarmStores, dht: Dht, pubsub: PubSub, settings: Config['swarm'], metrics: DriverMetrics): Promise<Swarm> {
    const swarm = new Swarm(host, stores, dht, pubsub, settings)
    metrics.registerCoreCounters('swarm', 'Swarm transfer events', swarm.core.counters)
    swarm.#driver = new ProtocolDriver<SwarmMessage, SwarmInput, SwarmAction>({
      libp2p: host,
      codec: swarmCodec,
      core: swarm.core,
      now: Date.now,
      metrics,
      onAction: (action) => swarm.#onAction(action),
      onSendQueueDrained: (peer) => swarm.#releaseReads(peer),
    })
    await swarm.#driver.start()
    return swarm
  }

  /** Downloads the DAG under `root` (resuming from what the store holds) and resolves once it is whole. */
  fetch(root: CID, options: FetchOptions = {}): Promise<FetchResult> {
    if (this.#stopped) return Promise.reject(new ShoalError('OFFLINE', 'the node is stopping'))
    const key = asContentKey(root.toString())
    return new Promise<FetchResult>((resolve, reject) => {
      const signal = options.signal
      const onAbort = () => this.#abandon(key, waiter, signal?.reason)
      // The caller's signal may outlive the fetch: it keeps no listener once the fetch has settled.
      const settle = <T>(end: (value: T) => void) => (value: T) => {
        signal?.removeEventListener('abort', onAbort)
        end(value)
      }
      const waiter: Waiter = { resolve: settle(resolve), reject: settle(reject), onProgress: options.onProgress, pin: options.pin ?? true }
      let active = this.#fetches.get(key)
      if (active === undefined) {
        active = {
          root,
          startedMs: Date.now(),
          waiters: new Set(),
          totalBytes: undefined,
          unsubscribe: this.#listenForAnnouncements(key),
          pin: waiter.pin,
        }
        this.#fetches.set(key, active)
      }
      active.pin ||= waiter.pin
      active.waiters.add(waiter)
      if (signal !== undefined) {
        if (signal.aborted) return onAbort()
        signal.addEventListener('abort', onAbort, { once: true })
      }
      this.#input({ type: 'fetch', root: key, rootIsLeaf: root.code !== DAG_PB_CODE, order: options.order ?? 'rarest' })
    })
  }

  /**
   * The block `cid` of the content under `root`, waiting for the download (started in
   * order, for streaming, if none runs) to store it.
   */
  async block(root: CID, cid: CID, signal?: AbortSignal): Promise<Uint8Array> {
    const key = cid.toString()
    for (;;) {
      try {
        return await this.#blocks.get(cid)
      } catch (error) {
        if (!isShoalError(error, 'NOT_FOUND')) throw error
      }
      signal?.throwIfAborted()
      const stored = new Promise<void>((resolve) => {
        let waiters = this.#blockWaiters.get(key)
        if (waiters === undefined) this.#blockWaiters.set(key, (waiters = new Set()))
        waiters.add(resolve)
      })
      const fetched = this.#fetches.has(asContentKey(root.toString())) ? undefined : this.fetch(root, { order: 'in-order', signal })
      // A failed download fails the read; one that completed without this block means it is not part of the content.
      await Promise.race([stored, fetched?.then(() => undefined)])
      if (fetched !== undefined && !(await this.#blocks.has(cid))) throw new ShoalError('NOT_FOUND', `block ${cid} is not part of ${root}`)
    }
  }

  ledger(): LedgerEntry[] {
    return this.#ledger.entries()
  }

  async stop(): Promise<void> {
    this.#stopped = true
    clearInterval(this.#ledgerTimer)
    for (const [key, active] of this.#fetches) {
      active.unsubscribe()
      for (const waiter of active.waiters) waiter.reject(new ShoalError('OFFLINE', `the node stopped before ${key} was fetched; fetching it again resumes`))
    }
    this.#fetches.clear()
    await this.#driver?.stop()
    await this.#ledger.save().catch(() => {})
  }

  #input(input: HostInput): void {
    if (!this.#stopped) this.#driver?.input(input)
  }

  /**
   * gc removed blocks (and holds the repository's write lock). The swarm session of content
   * no longer whole here closes, its seeding limits are forgotten, and what is known complete
   * is looked up again: otherwise a session, complete, would answer a later fetch at once with
   * nothing stored, and offer peers blocks it cannot read.
   */
  async blocksRemoved(): Promise<void> {
    this.#completeContent.clear()
    for (const root of new Set([...this.core.sessionRoots(), ...this.#seeding.keys(), ...this.#stoppedSeeding])) {
      if (await this.#walkComplete(root) !== undefined) continue
      this.#seeding.delete(root)
      this.#stoppedSeeding.delete(root)
      this.#input({ type: 'close', root })
    }
  }

  #abandon(key: ContentKey, waiter: Waiter, reason: unknown): void {
    const active = this.#fetches.get(key)
    if (active === undefined || !active.waiters.delete(waiter)) return
    waiter.reject(new ShoalError('ABORTED', `fetch of ${key} aborted; the blocks stored so far are kept and a new fetch resumes`, { cause: reason }))
    if (active.waiters.size > 0) return
    this.#fetches.delete(key)
    active.unsubscribe()
    this.#input({ type: 'close', root: key })
  }

  #onAction(action: HostAction<SwarmMessage, SwarmAction>): void {
    switch (action.type) {
      case 'load-node': return void this.#answer(this.#loadNode(action.root, action.cid))
      case 'check-leaves': return void this.#answer(this.#checkLeaves(action.root, action.leaves))
      case 'store': return void this.#answer(this.#store(action))
      case 'read': return this.#read(action)
      case 'lookup-content': return void this.#answer(this.#lookupContent(action.root))
      case 'find-sources': return void this.#findSources(action.root)
      case 'emit': return this.#onEvent(action.event)
    }
  }

  /** Runs an answer's work and hands the core its input; a failure here is a bug or a dying store. */
  async #answer(work: Promise<HostInput>): Promise<void> {
    this.#input(await work)
  }

  async #loadNode(root: ContentKey, cidText: string): Promise<HostInput> {
    const cid = CID.parse(cidText)
    let bytes: Uint8Array
    try {
      bytes = await this.#blocks.get(cid)
    } catch (error) {
      if (!isShoalError(error, 'NOT_FOUND') && !isShoalError(error, 'BLOCK_CORRUPT')) throw error
      return { type: 'node-loaded', root, cid: cidText, children: undefined }
    }
    const children = childrenOf(bytes)
    if (children === undefined) return { type: 'node-loaded', root, cid: cidText, children: undefined }
    if (cidText === root) this.#noteTotalBytes(root, bytes)
    return { type: 'node-loaded', root, cid: cidText, children }
  }

  async #checkLeaves(root: ContentKey, leaves: readonly string[]): Promise<HostInput> {
    const held = new Bitfield(leaves.length)
    for (let index = 0; index < leaves.length; index++) if (await this.#blocks.has(CID.parse(leaves[index]!))) held.add(index)
    return { type: 'leaves-checked', root, held }
  }

  async #store(action: Extract<SwarmAction, { type: 'store' }>): Promise<HostInput> {
    const { root, block, from } = action
    const cid = CID.parse(action.cid)
    const bytes = action.data as Uint8Array
    const check = checkBlock(cid, bytes)
    if (!check.ok) return { type: 'stored', root, block, from, outcome: 'corrupt', detail: check.reason }
    let children: DagChild[] | undefined
    if (typeof block === 'string') {
      children = childrenOf(bytes)
      if (children === undefined) return { type: 'stored', root, block, from, outcome: 'invalid', detail: `inner node ${cid} is not a dag-pb node of raw or dag-pb links` }
      if (action.cid === root) this.#noteTotalBytes(root, bytes)
    }
    try {
      await this.#blocks.put(cid, bytes)
    } catch (error) {
      return { type: 'stored', root, block, from, outcome: 'failed', detail: (error as Error).message }
    }
    const waiters = this.#blockWaiters.get(action.cid)
    if (waiters !== undefined) {
      this.#blockWaiters.delete(action.cid)
      for (const wake of waiters) wake()
    }
    return children === undefined ? { type: 'stored', root, block, from, outcome: 'ok' } : { type: 'stored', root, block, from, outcome: 'ok', children }
  }

  #read(action: Extract<SwarmAction, { type: 'read' }>): void {
    if ((this.#driver?.queuedBytes(action.to) ?? 0) > SEND_QUEUE_BYTES_FOR_READS) {
      let held = this.#heldReads.get(action.to)
      if (held === undefined) this.#heldReads.set(action.to, (held = []))
      held.push(action)
      return
    }
    void this.#answer(this.#readBlock(action))
  }

  #releaseReads(peer: PeerId): void {
    const held = this.#heldReads.get(peer)
    if (held === undefined) return
    this.#heldReads.delete(peer)
    for (const action of held) this.#read(action)
  }

  async #readBlock(action: Extract<SwarmAction, { type: 'read' }>): Promise<HostInput> {
    const { to, root, block } = action
    try {
      return { type: 'block-read', to, root, block, data: await this.#blocks.get(CID.parse(action.cid)) }
    } catch (error) {
      if (!isShoalError(error, 'NOT_FOUND') && !isShoalError(error, 'BLOCK_CORRUPT')) throw error
      this.#completeContent.delete(root)
      return { type: 'block-read', to, root, block, data: undefined }
    }
  }

  /** The content is served when its whole DAG is here, unless its seeding limits are reached. */
  async #lookupContent(root: ContentKey): Promise<HostInput> {
    if (this.#stoppedSeeding.has(root)) return { type: 'content', root, content: undefined }
    let content = this.#completeContent.get(root)
    if (content === undefined) {
      // Not while gc sweeps: it could find content whole that is going.
      const release = await this.#gcLock.readLock()
      try {
        content = await this.#walkComplete(root)
      } finally {
        release()
      }
      if (content !== undefined) {
        if (this.#completeContent.size >= COMPLETE_CONTENT_CACHE_MAX) this.#completeContent.delete(this.#completeContent.keys().next().value!)
        this.#completeContent.set(root, content)
      }
    }
    return { type: 'content', root, content }
  }

  /** The leaves (in order) and inner nodes of the DAG under `root` if every block is stored, else undefined. */
  async #walkComplete(root: ContentKey): Promise<{ leaves: string[]; nodes: string[] } | undefined> {
    let rootCid: CID
    try {
      rootCid = CID.parse(root)
    } catch {
      return undefined
    }
    const leaves: string[] = []
    const nodes: string[] = []
    const visit = async (cid: CID): Promise<boolean> => {
      if (cid.code !== DAG_PB_CODE) {
        leaves.push(cid.toString())
        return this.#blocks.has(cid)
      }
      let bytes: Uint8Array
      try {
        bytes = await this.#blocks.get(cid)
      } catch {
        return false
      }
      const children = childrenOf(bytes)
      if (children === undefined) return false
      nodes.push(cid.toString())
      for (const child of children) if (!(await visit(CID.parse(child.cid)))) return false
      return true
    }
    if (rootCid.code !== RAW_CODE && rootCid.code !== DAG_PB_CODE) return undefined
    return (await visit(rootCid)) ? { leaves, nodes } : undefined
  }

  async #findSources(root: ContentKey): Promise<void> {
    let multihash: Uint8Array
    try {
      multihash = CID.parse(root).multihash.bytes
    } catch {
      return
    }
    try {
      await this.#dht.findProviders(multihash, SOURCES_PER_SEARCH, (provider) => {
        if (provider.peerId === this.#self) return
        // Each provider is tried as it is found, not after the whole lookup.
        this.#input({ type: 'sources', root, sources: [{ peer: asPeerId(provider.peerId), addresses: provider.addresses }] })
      })
    } catch {
      // No provider found (or the DHT is stopping): connected peers and announcements remain; the core asks again later.
    }
  }

  #listenForAnnouncements(root: ContentKey): () => void {
    try {
      return this.#pubsub.subscribe(contentTopic(root), (message) => {
        const announcement = parseAnnouncement(message.data)
        if (announcement === undefined || announcement.peer === this.#self) return
        this.#input({ type: 'sources', root, sources: [announcement] })
      })
    } catch {
      // Too many subscriptions: the DHT alone finds sources.
      return () => {}
    }
  }

  #announce(root: ContentKey): void {
    const announcement = { peer: this.#self, addresses: this.#host.getMultiaddrs().map(String).slice(0, 8) }
    const data = new TextEncoder().encode(JSON.stringify(announcement))
    this.#pubsub.publish(contentTopic(root), data).catch(() => {
      // Nobody listens: nothing to announce to.
    })
  }

  #onEvent(event: SwarmEvent): void {
    switch (event.type) {
      case 'progress': {
        const active = this.#fetches.get(event.root)
        if (active === undefined) return
        const progress = this.#fetchProgress(active, event.progress)
        for (const waiter of active.waiters) waiter.onProgress?.(progress)
        return
      }
      case 'complete':
        return void this.#completed(event.root, event.progress)
      case 'failed': {
        const active = this.#fetches.get(event.root)
        if (active === undefined) return
        this.#fetches.delete(event.root)
        active.unsubscribe()
        const code = event.reason === 'too-many-sessions' ? 'TOO_MANY_FETCHES' : event.reason === 'invalid-content' ? 'INVALID_CONTENT' : 'FETCH_FAILED'
        for (const waiter of active.waiters) waiter.reject(new ShoalError(code, `fetch of ${event.root} failed: ${event.detail}`))
        return
      }
      case 'misbehaved':
        return this.#ledger.misbehaved(event.peer, event.reason)
      case 'transferred':
        this.#ledger.transferred(event.peer, event.direction, event.bytes)
        if (event.direction === 'sent') this.#countSeeding(event.root, event.bytes)
        return
    }
  }

  async #completed(root: ContentKey, sessionProgress: SessionProgress): Promise<void> {
    const active = this.#fetches.get(root)
    if (active === undefined) return
    this.#fetches.delete(root)
    active.unsubscribe()
    // Syncing thousands of folders and pinning take a while: progress goes on meanwhile.
    const finishing = setInterval(() => {
      const progress: FetchProgress = { ...this.#fetchProgress(active, sessionProgress), phase: 'finishing', bytesPerSecond: 0 }
      for (const waiter of active.waiters) waiter.onProgress?.(progress)
    }, PROGRESS_INTERVAL_MS)
    try {
      await this.#blocks.flush()
      if (active.pin) await this.#pins.add(active.root, 'recursive', Date.now())
    } catch (error) {
      for (const waiter of active.waiters) waiter.reject(error as Error)
      return
    } finally {
      clearInterval(finishing)
    }
    this.#completeContent.delete(root)
    const progress = this.#fetchProgress(active, sessionProgress)
    const result: FetchResult = {
      cid: root,
      totalBytes: progress.totalBytes,
      bytesReceived: progress.bytesReceived,
      leafCount: progress.leafCount,
      peerCount: progress.peerCount,
      durationMs: progress.elapsedMs,
    }
    for (const waiter of active.waiters) {
      waiter.onProgress?.(progress)
      waiter.resolve(result)
    }
    this.#startSeeding(root, progress.totalBytes ?? progress.bytesReceived)
    this.#dht.provideInBackground([active.root.multihash.bytes])
    this.#announce(root)
  }

  #startSeeding(root: ContentKey, size: number): void {
    const { ratioMax, secondsMax } = this.#settings.seed
    if (ratioMax === null && secondsMax === null) return
    this.#seeding.set(root, { size, uploadedBytes: 0, untilMs: secondsMax === null ? Infinity : Date.now() + secondsMax * 1000 })
    if (secondsMax !== null) setTimeout(() => this.#stopSeeding(root), secondsMax * 1000).unref()
  }

  #countSeeding(root: ContentKey, bytes: number): void {
    const seeding = this.#seeding.get(root)
    if (seeding === undefined) return
    seeding.uploadedBytes += bytes
    const ratioMax = this.#settings.seed.ratioMax
    if (ratioMax !== null && seeding.uploadedBytes >= ratioMax * seeding.size) this.#stopSeeding(root)
  }

  #stopSeeding(root: ContentKey): void {
    if (!this.#seeding.delete(root)) return
    this.#stoppedSeeding.add(root)
    this.#input({ type: 'close', root })
  }

  #noteTotalBytes(root: ContentKey, rootBytes: Uint8Array): void {
    const active = this.#fetches.get(root)
    if (active === undefined || active.totalBytes !== undefined) return
    active.totalBytes = fileSizeOf(rootBytes)
  }

  #fetchProgress(active: ActiveFetch, progress: SessionProgress): FetchProgress {
    return {
      cid: active.root.toString(),
      phase: progress.phase,
      leafCount: progress.leafCount,
      heldCount: progress.heldCount,
      bytesReceived: progress.bytesReceived,
      totalBytes: active.totalBytes,
      peerCount: progress.peerCount,
      sendingPeerCount: progress.sendingPeerCount,
      bytesPerSecond: Math.round(progress.bytesPerSecond),
      elapsedMs: Date.now() - active.startedMs,
    }
  }
}

export function contentTopic(root: string): string {
  return `shoal/content/${root}`
}

/** An inner node's links, each a leaf (raw) or another inner node (dag-pb); undefined if the bytes are no such node. */
function childrenOf(bytes: Uint8Array): DagChild[] | undefined {
  let node: dagPb.PBNode
  try {
    node = dagPb.decode(bytes)
  } catch {
    return undefined
  }
  const children: DagChild[] = []
  for (const link of node.Links) {
    const code = link.Hash.code
    if (code !== RAW_CODE && code !== DAG_PB_CODE) return undefined
    children.push({ cid: link.Hash.toString(), leaf: code === RAW_CODE })
  }
  return children
}

/** The file size a UnixFS root declares (the sum of its blocksizes), when it is a file. */
function fileSizeOf(rootBytes: Uint8Array): number | undefined {
  try {
    const node = dagPb.decode(rootBytes)
    if (node.Data === undefined) return undefined
    const unixfs = UnixFS.unmarshal(node.Data)
    return unixfs.type === 'file' ? Number(unixfs.fileSize()) : undefined
  } catch {
    return undefined
  }
}

function parseAnnouncement(data: Uint8Array): { peer: PeerId; addresses: string[] } | undefined {
  if (data.byteLength > ANNOUNCEMENT_BYTES_MAX) return undefined
  try {
    const value = JSON.parse(new TextDecoder().decode(data)) as { peer?: unknown; addresses?: unknown }
    if (typeof value.peer !== 'string' || !Array.isArray(value.addresses)) return undefined
    const addresses = value.addresses.filter((address): address is string => typeof address === 'string' && address.length <= 256).slice(0, 8)
    return { peer: asPeerId(value.peer), addresses }
  } catch {
    return undefined
  }
}
