/**
 * SwarmCore: BitTorrent-style transfer of UnixFS DAGs (ARCHITECTURE.md, "Data flow"), sans-IO.
 *
 * A session per content root. A download first gets the DAG's inner nodes (from the store,
 * else from peers that hold the DAG, which serve them whatever their choke state, as
 * BitTorrent's metadata exchange does), so that it knows every leaf, then the leaves:
 * random first, then rarest-first (or in order, for streaming), with endgame. Each peer is
 * asked for enough blocks at once to fill its bandwidth-delay product. Uploads follow
 * tit-for-tat: the peers that gave us most lately get the regular unchoke slots, one slot
 * rotates optimistically; a peer holding everything serves round-robin or fastest-first.
 *
 * The core never touches bytes it has not been told are good: a received block goes out in
 * a `store` action, and only a `stored` input with outcome 'ok' makes it held, announced
 * and servable. Reads and lookups of local content go out as actions too; the node answers
 * them (node/swarm.ts), as the simulator does with virtual blocks.
 *
 * Sessions open on a bitfield: a downloader sends its own (empty at first) to its sources
 * and to peers that connect; a peer answers with its bitfield if it holds or fetches the
 * content (a seed is looked up lazily, with a `lookup-content` action), else with `absent`.
 */
import type { Direction, Millis, NetworkAction, NetworkInput, PeerId } from '../sans-io.ts'
import type { Prng } from '../prng.ts'
import { Bitfield } from './bitfield.ts'
import type { SwarmConfig } from './config.ts'
import type { BlockData, BlockRef, ContentKey, RejectReason, SwarmMessage } from './messages.ts'
import { PiecePicker } from './piece-picker.ts'
import { RateMeter } from './rate-meter.ts'
import { TokenBucket } from './token-bucket.ts'

/** A link of an inner node: a leaf (raw codec) or another inner node. */
export interface DagChild {
  cid: string
  leaf: boolean
}

export type FetchOrder = 'rarest' | 'in-order'

export interface Source {
  peer: PeerId
  addresses: readonly string[]
}

/**
 * What the node stored of a received block: 'corrupt' (bytes do not match the CID: the
 * sender is to blame), 'invalid' (the bytes match but are no UnixFS inner node: the
 * content itself is broken), 'failed' (the store refused it: disk full, quota).
 */
export type StoreOutcome = 'ok' | 'corrupt' | 'invalid' | 'failed'

export type SwarmInput =
  | NetworkInput<SwarmMessage>
  /** Start downloading `root`. `rootIsLeaf`: the root is a raw block, the whole content. */
  | { type: 'fetch'; root: ContentKey; rootIsLeaf: boolean; order: FetchOrder }
  /** Give up a download, or stop seeding: the session closes. */
  | { type: 'close'; root: ContentKey }
  /** Peers said to hold the content (DHT providers, gossiped haves). */
  | { type: 'sources'; root: ContentKey; sources: readonly Source[] }
  /** The answer to `load-node`: the inner node's links if the store holds it, else undefined. */
  | { type: 'node-loaded'; root: ContentKey; cid: string; children: readonly DagChild[] | undefined }
  /** The answer to `check-leaves`: which leaves the store holds already (a resumed download). */
  | { type: 'leaves-checked'; root: ContentKey; held: Bitfield }
  /** The answer to `store`. `children`: an inner node's links, for outcome 'ok'. */
  | { type: 'stored'; root: ContentKey; block: BlockRef; from: PeerId; outcome: StoreOutcome; children?: readonly DagChild[]; detail?: string }
  /** The answer to `read`: the block, or undefined when the store no longer has it. */
  | { type: 'block-read'; to: PeerId; root: ContentKey; block: BlockRef; data: BlockData | undefined }
  /** The answer to `lookup-content`: the complete content's leaves and inner nodes, or undefined. */
  | { type: 'content'; root: ContentKey; content: { leaves: readonly string[]; nodes: readonly string[] } | undefined }

export type SwarmEvent =
  | { type: 'progress'; root: ContentKey; progress: SessionProgress }
  | { type: 'complete'; root: ContentKey; progress: SessionProgress }
  | { type: 'failed'; root: ContentKey; reason: SwarmFailure; detail: string }
  | { type: 'misbehaved'; peer: PeerId; reason: Misbehaviour }
  /** For the ledger: bytes of verified blocks received from, and of blocks sent to, a peer. */
  | { type: 'transferred'; peer: PeerId; root: ContentKey; direction: 'sent' | 'received'; bytes: number }

export type SwarmFailure = 'too-many-sessions' | 'invalid-content' | 'store-failed' | 'closed'

export type Misbehaviour =
  | 'bad-block'
  | 'unsolicited-blocks'
  | 'request-flood'
  | 'unresponsive'
  | 'protocol-violation'

export interface SessionProgress {
  /** 'dag' while the inner nodes are fetched, then 'leaves', then 'complete'. */
  phase: SessionPhase
  leafCount: number
  heldCount: number
  /** Verified bytes received from peers in this session. */
  bytesReceived: number
  bytesSent: number
  peerCount: number
  /** Peers that unchoked us. */
  sendingPeerCount: number
  bytesPerSecond: number
}

export type SessionPhase = 'dag' | 'leaves' | 'complete'

export type SwarmAction =
  | NetworkAction<SwarmMessage>
  | { type: 'load-node'; root: ContentKey; cid: string }
  | { type: 'check-leaves'; root: ContentKey; leaves: readonly string[] }
  /** Verify `data` against `cid`; store it; answer with `stored`. */
  | { type: 'store'; root: ContentKey; block: BlockRef; cid: string; from: PeerId; data: BlockData }
  | { type: 'read'; to: PeerId; root: ContentKey; block: BlockRef; cid: string }
  /** Whether this node holds the complete content of `root` and will serve it; answer with `content`. */
  | { type: 'lookup-content'; root: ContentKey }
  /** Look for peers that hold `root` (the DHT, the content's topic); answer with `sources`. */
  | { type: 'find-sources'; root: ContentKey }
  | { type: 'emit'; event: SwarmEvent }

/** What the core did and refused, for metrics (node) and scenario figures (sim). */
export interface SwarmCounters {
  blocksReceived: number
  bytesReceived: number
  blocksSent: number
  bytesSent: number
  /** Copies of a block already held or being stored: endgame's cost. */
  duplicateBlocks: number
  unsolicitedBlocks: number
  badBlocks: number
  requestsSent: number
  endgameRequests: number
  cancelsSent: number
  requestTimeouts: number
  rejectsSent: number
  rejectsReceived: number
  overloadedRequests: number
  protocolViolations: number
  peersBanned: number
  peersDroppedUnresponsive: number
  lookupsRefused: number
  sessionsRefused: number
}

export interface SwarmCoreOptions {
  self: PeerId
  config: SwarmConfig
  prng: Prng
}

/** Pending lookups of content to seed: bounded, so that bitfields for made-up roots cost little. */
const LOOKUPS_PENDING_MAX = 64
const LOOKUP_WAITERS_MAX = 16
/** A new peer's chance of an optimistic unchoke, against 1 for the others (BitTorrent's 3x). */
const NEW_PEER_WEIGHT = 3
/** A peer that took this many blocks' worth from us and gave nothing back: it free-rides, as far as we can tell. */
const FREE_RIDER_BLOCKS = 4
const FREE_RIDER_WEIGHT = 0.1
/** Above any byte count or rate: a seed serves peers that ever gave it something first. */
const SEED_CONTRIBUTOR_RANK = 2 ** 52
/** Initial seeding: a leaf sent that this many session peers hold is offered no more. */
const INITIAL_SEED_SPREAD = 3
/** Initial seeding: a peer that lacks at most this share of the leaves is finishing (see #offer). */
const FINISHING_SHARE = 0.02
/** Initial seeding: leaves offered to a peer at first (and each time it has them all); one more per block it gets from us. */
const OFFERED_LEAVES_PER_PEER = 4
/**
 * Initial seeding: a peer that lacks leaves, is not interested in us and has announced no
 * new leaf for this long is stalled (see #offerToStalled). Several times the gap between a
 * downloading peer's haves (a batch a second at most; a 1 MiB leaf takes under a second at
 * 10 Mbit/s), and short against a download: each stall costs every peer behind it as much.
 */
const STALLED_PEER_MS = 5_000

class SessionPeer {
  readonly id: PeerId
  readonly connection: ConnectedPeer
  readonly session: Session
  /** False once it left the session (or the session closed). */
  active = true
  /** Their leaves: undefined until they send a bitfield with the leaf count. */
  bits: Bitfield | undefined
  amChoking = true
  amInterested = false
  peerChoking = true
  peerInterested = false
  /**
   * Leaves they hold that we lack (counted once we know the leaves), while we are interested
   * a lower bound: it drops for every leaf we store, theirs or not, and is recounted when it
   * reaches 0, which spares looking at every peer's bitfield for every leaf stored. Exact 0
   * while we are not interested.
   */
  usefulCount = 0
  /** Its place in the unchoke ranking, computed before each sort. */
  rankKey = 0
  /** When we say not-interested if they still have nothing we lack (Infinity: not pending). */
  interestEndsAt: Millis = Infinity
  /** Initial seeding: the leaves we told them we hold. */
  advertised: Bitfield | undefined
  /** When they last told us of a leaf new to them (a bitfield or a have). */
  lastNewLeafAt: Millis
  /** Initial seeding: they stalled once; from then on they are offered any leaf they lack, as a finishing peer is. */
  stalled = false
  /** Our requests to them in flight, with when each was sent. */
  readonly outstanding = new Map<BlockRef, Millis>()
  /**
   * Leaves asked of them whose requests their choke dropped: a copy already on its way is
   * still welcome. Undefined while there are none (and the next set below): thousands of
   * session peers in a simulation need not each carry empty sets.
   */
  droppedRequests: Set<number> | undefined
  /** Their requests waiting for a read. */
  queue: BlockRef[] = []
  readingCount = 0
  /** Reads in flight whose request they cancelled. */
  cancelled: Set<BlockRef> | undefined
  readonly download: RateMeter
  readonly upload: RateMeter
  bytesReceived = 0
  bytesSent = 0
  readonly joinedAt: Millis
  lastBlockAt: Millis
  consecutiveTimeouts = 0
  /** It let a request for an inner node time out: it is not asked for the DAG again. */
  dagFailed = false
  /** The shortest request-to-block time seen: a round trip plus one block's transfer. */
  latencyMinMs = Infinity

  constructor(id: PeerId, connection: ConnectedPeer, session: Session, now: Millis, rateWindowMs: number) {
    this.id = id
    this.connection = connection
    this.session = session
    this.download = new RateMeter(now, rateWindowMs)
    this.upload = new RateMeter(now, rateWindowMs)
    this.joinedAt = now
    this.lastBlockAt = now
    this.lastNewLeafAt = now
  }
}

class ConnectedPeer {
  readonly id: PeerId
  readonly direction: Direction
  readonly uploadBucket: TokenBucket
  readonly downloadBucket: TokenBucket
  /** Across sessions, for the optimistic unchoke's view of who reciprocates. */
  bytesSent = 0
  bytesReceived = 0
  unsolicitedBlocks = 0
  overloadedRequests = 0
  /** The session peer its last message was for: most messages are for the same one. */
  lastSessionPeer: SessionPeer | undefined

  constructor(id: PeerId, direction: Direction, now: Millis, config: SwarmConfig) {
    this.id = id
    this.direction = direction
    this.uploadBucket = new TokenBucket(now, config.peerUploadBytesPerSecondMax, config.blockBytesTypical)
    this.downloadBucket = new TokenBucket(now, config.peerDownloadBytesPerSecondMax, config.blockBytesTypical)
  }
}

class Session {
  readonly root: ContentKey
  /** Opened by a fetch (rather than by a peer asking for content we hold). */
  readonly fetching: boolean
  readonly order: FetchOrder
  phase: SessionPhase
  /** Inner nodes known: their links (the root first). */
  readonly children = new Map<string, readonly DagChild[]>()
  readonly nodesLoading = new Set<string>()
  /** Inner nodes to get from peers, and those asked for (with whom and when). */
  readonly nodesMissing = new Set<string>()
  readonly nodeRequests = new Map<string, { peer: PeerId; at: Millis }>()
  leaves: readonly string[] | undefined
  held: Bitfield | undefined
  picker: PiecePicker | undefined
  /** Leaves in flight, with the peers asked (more than one only in endgame). */
  readonly requestedFrom = new Map<number, PeerId[]>()
  /** Blocks handed to the store and not yet reported stored, with their size. */
  readonly storing = new Map<BlockRef, number>()
  readonly peers = new Map<PeerId, SessionPeer>()
  /** Peers sent our bitfield, whose answer is awaited, with what that bitfield said (see #bitfieldVersion). */
  readonly opening = new Map<PeerId, number>()
  /** Peers that said they neither hold nor fetch this content. */
  readonly absent = new Set<PeerId>()
  /**
   * Initial seeding: how many times each leaf was sent, how many session peers are known to
   * hold it, how many times it was offered, and where the search for the next starts.
   */
  uploads: Uint32Array | undefined
  seen: Uint16Array | undefined
  offers: Uint32Array | undefined
  offerCursor = 0
  /** Initial seeding: when a peer that is not interested in us may have stalled (see #offerToStalled). */
  stallCheckAt: Millis = Infinity
  pendingHaves: number[] = []
  haveFlushAt: Millis = Infinity
  lastHaveFlushAt: Millis = -Infinity
  readonly download: RateMeter
  bytesReceived = 0
  bytesSent = 0
  nextRechokeAt: Millis
  nextOptimisticAt: Millis
  readonly optimistic = new Set<PeerId>()
  /** Peers we unchoke that are interested: the upload slots in use. */
  slotsUsed = 0
  /** Peers we are about to say not-interested to (#loseInterest), and the first of their instants. */
  readonly interestEnding = new Set<SessionPeer>()
  interestCheckAt: Millis = Infinity
  sourcesAskedAt: Millis = -Infinity
  /**
   * No request of ours in flight expires before this: a lower bound, kept as requests go out
   * and made exact by #expireRequests, so that nextDeadline need not look at every peer.
   */
  requestsExpireAt: Millis = Infinity
  nextProgressAt: Millis
  lastActiveAt: Millis
  blockBytesTypical: number

  constructor(root: ContentKey, fetching: boolean, order: FetchOrder, phase: SessionPhase, now: Millis, config: SwarmConfig, prng: Prng) {
    this.root = root
    this.fetching = fetching
    this.order = order
    this.phase = phase
    this.download = new RateMeter(now, config.rateWindowMs)
    // Sessions rechoke at different instants, so that a node's uploads do not all shift at once.
    this.nextRechokeAt = now + prng.int(config.rechokeIntervalMs)
    this.nextOptimisticAt = now + config.optimisticRotateMs
    this.nextProgressAt = config.progressIntervalMs > 0 ? now + config.progressIntervalMs : Infinity
    this.lastActiveAt = now
    this.blockBytesTypical = config.blockBytesTypical
  }

  get leafCount(): number {
    return this.leaves?.length ?? 0
  }

  /** Which cid a block reference names, if it is part of this content as far as we know. */
  cidOf(block: BlockRef): string | undefined {
    if (typeof block === 'number') return this.leaves?.[block]
    return this.children.has(block) || this.nodesMissing.has(block) || this.nodeRequests.has(block) || this.nodesLoading.has(block) ? block : undefined
  }
}

export class SwarmCore {
  readonly counters: SwarmCounters = {
    blocksReceived: 0, bytesReceived: 0, blocksSent: 0, bytesSent: 0, duplicateBlocks: 0, unsolicitedBlocks: 0, badBlocks: 0,
    requestsSent: 0, endgameRequests: 0, cancelsSent: 0, requestTimeouts: 0, rejectsSent: 0, rejectsReceived: 0, overloadedRequests: 0,
    protocolViolations: 0, peersBanned: 0, peersDroppedUnresponsive: 0, lookupsRefused: 0, sessionsRefused: 0,
  }

  readonly #self: PeerId
  readonly #config: SwarmConfig
  readonly #prng: Prng
  readonly #sessions = new Map<ContentKey, Session>()
  readonly #connected = new Map<PeerId, ConnectedPeer>()
  /** Bitfields of peers waiting for a `lookup-content` answer, per root. */
  readonly #lookups = new Map<ContentKey, Map<PeerId, Extract<SwarmMessage, { type: 'bitfield' }>>>()
  /** Sources being dialled, and for which downloads. */
  readonly #dialling = new Map<PeerId, Set<ContentKey>>()
  readonly #banned = new Map<PeerId, Millis>()
  /** Peers whose queued requests wait for the upload buckets. */
  readonly #uploadWaiting = new Set<SessionPeer>()
  readonly #uploadBucket: TokenBucket
  readonly #downloadBucket: TokenBucket
  /** Downloads waiting for the download buckets. */
  readonly #downloadWaiting = new Set<Session>()
  /** The session the last message was for: nearly every message is for the same one. */
  #lastSession: Session | undefined
  #actions: SwarmAction[] = []
  #actionIndex = 0
  #now: Millis = 0

  constructor(options: SwarmCoreOptions) {
    this.#self = options.self
    this.#config = options.config
    this.#prng = options.prng
    this.#uploadBucket = new TokenBucket(0, this.#config.uploadBytesPerSecondMax, this.#config.blockBytesTypical)
    this.#downloadBucket = new TokenBucket(0, this.#config.downloadBytesPerSecondMax, this.#config.blockBytesTypical)
  }

  /** The sessions, for status and tests. */
  sessionProgress(root: ContentKey): SessionProgress | undefined {
    const session = this.#sessions.get(root)
    return session === undefined ? undefined : this.#progressOf(session)
  }

  /** The content of every session, downloading or seeding. */
  sessionRoots(): ContentKey[] {
    return [...this.#sessions.keys()]
  }

  get sessionCount(): number {
    return this.#sessions.size
  }

  /** Whether we unchoke `peer` in the session of `root` (for tests and scenario figures). */
  isUnchoking(root: ContentKey, peer: PeerId): boolean {
    const sessionPeer = this.#sessions.get(root)?.peers.get(peer)
    return sessionPeer !== undefined && !sessionPeer.amChoking
  }

  handle(now: Millis, input: SwarmInput): void {
    this.#now = now
    switch (input.type) {
      case 'peer-connected': return this.#onPeerConnected(input.peer, input.direction)
      case 'peer-disconnected': return this.#onPeerDisconnected(input.peer)
      case 'dial-failed': return void this.#dialling.delete(input.peer)
      case 'peer-discovered': return
      case 'message': return this.#onMessage(input.from, input.message)
      case 'tick': return this.#onTick()
      case 'fetch': return this.#onFetch(input.root, input.rootIsLeaf, input.order)
      case 'close': return this.#closeSession(input.root, 'closed', 'the session was closed')
      case 'sources': return this.#onSources(input.root, input.sources)
      case 'node-loaded': return this.#onNodeLoaded(input.root, input.cid, input.children)
      case 'leaves-checked': return this.#onLeavesChecked(input.root, input.held)
      case 'stored': return this.#onStored(input)
      case 'block-read': return this.#onBlockRead(input.to, input.root, input.block, input.data)
      case 'content': return this.#onContent(input.root, input.content)
    }
  }

  poll(): SwarmAction | undefined {
    if (this.#actionIndex < this.#actions.length) return this.#actions[this.#actionIndex++]
    if (this.#actions.length > 0) {
      this.#actions = []
      this.#actionIndex = 0
    }
    return undefined
  }

  nextDeadline(): Millis | undefined {
    let deadline = Infinity
    for (const session of this.#sessions.values()) {
      deadline = Math.min(deadline, session.nextRechokeAt, session.haveFlushAt, session.nextProgressAt, session.interestCheckAt, session.stallCheckAt)
      if (session.fetching && session.phase !== 'complete') {
        deadline = Math.min(deadline, session.requestsExpireAt)
        // Only a download short of peers asks for more: a deadline past due otherwise would make the driver spin.
        if (session.peers.size < this.#config.sourcesWantedMin) deadline = Math.min(deadline, session.sourcesAskedAt + this.#config.sourcesRefreshMs)
      } else if (session.peers.size === 0) {
        // As #onTick: a session to seed, or a finished download, is dropped when idle with no
        // peers (a peer that asks later opens one again from the store).
        deadline = Math.min(deadline, session.lastActiveAt + this.#config.idleSessionMs)
      }
    }
    if (this.#uploadWaiting.size > 0) deadline = Math.min(deadline, this.#uploadReadyAt())
    if (this.#downloadWaiting.size > 0) deadline = Math.min(deadline, this.#downloadBucket.readyAt(this.#now), this.#now + 50)
    return deadline === Infinity ? undefined : deadline
  }

  #sessionOf(root: ContentKey): Session | undefined {
    const last = this.#lastSession
    if (last !== undefined && last.root === root) return last
    const session = this.#sessions.get(root)
    if (session !== undefined) this.#lastSession = session
    return session
  }

  #deleteSession(session: Session): void {
    this.#sessions.delete(session.root)
    if (this.#lastSession === session) this.#lastSession = undefined
  }

  // ---- connections -------------------------------------------------------------------

  #onPeerConnected(peer: PeerId, direction: Direction): void {
    if (this.#isBanned(peer)) return this.#push({ type: 'disconnect', peer, reason: 'banned: sent a bad block' })
    const connection = new ConnectedPeer(peer, direction, this.#now, this.#config)
    this.#connected.set(peer, connection)
    const wanted = this.#dialling.get(peer)
    this.#dialling.delete(peer)
    // Peers that connect are sources too: ask each of them for what we are fetching.
    for (const session of this.#sessions.values()) {
      if (!session.fetching || session.phase === 'complete') continue
      if (wanted?.has(session.root) || session.peers.size + session.opening.size < this.#config.peersPerSessionMax) this.#open(session, peer)
    }
  }

  #onPeerDisconnected(peer: PeerId): void {
    if (!this.#connected.delete(peer)) return
    for (const session of this.#sessions.values()) {
      session.opening.delete(peer)
      this.#leaveSession(session, peer)
    }
    for (const waiting of this.#lookups.values()) waiting.delete(peer)
  }

  #open(session: Session, peer: PeerId): void {
    if (peer === this.#self || session.peers.has(peer) || session.opening.has(peer) || session.absent.has(peer)) return
    if (!this.#connected.has(peer)) return
    session.opening.set(peer, this.#bitfieldVersion(session))
    this.#send(peer, this.#bitfieldOf(session))
  }

  /** Changes whenever our bitfield does: -1 before we know the leaves, then the count held. */
  #bitfieldVersion(session: Session): number {
    return session.held === undefined ? -1 : session.held.count
  }

  #bitfieldOf(session: Session, peer?: SessionPeer): SwarmMessage {
    const held = session.held
    // Until the store says which leaves it holds, we say we know none (the wire wants leafCount's bits).
    if (held === undefined) return { type: 'bitfield', root: session.root, leafCount: 0, bits: new Uint8Array(0) }
    // Knowing the leaves, we hold every inner node; of a DAG without leaves that is all of it.
    if (session.leafCount === 0) return { type: 'bitfield', root: session.root, leafCount: 0, bits: new Uint8Array(0), dagHeld: true }
    if (peer?.advertised !== undefined) return { type: 'bitfield', root: session.root, leafCount: session.leafCount, bits: peer.advertised.bytes.slice() }
    return { type: 'bitfield', root: session.root, leafCount: session.leafCount, bits: held.bytes.slice() }
  }

  // ---- application commands ----------------------------------------------------------

  #onFetch(root: ContentKey, rootIsLeaf: boolean, order: FetchOrder): void {
    const existing = this.#sessions.get(root)
    if (existing !== undefined) {
      if (existing.phase === 'complete') this.#emit({ type: 'complete', root, progress: this.#progressOf(existing) })
      return
    }
    let fetchCount = 0
    for (const session of this.#sessions.values()) if (session.fetching && session.phase !== 'complete') fetchCount++
    if (fetchCount >= this.#config.fetchesMax) {
      this.counters.sessionsRefused++
      return this.#emit({ type: 'failed', root, reason: 'too-many-sessions', detail: `${fetchCount} downloads are running, the most swarm.fetchesMax allows` })
    }
    const session = new Session(root, true, order, 'dag', this.#now, this.#config, this.#prng)
    this.#sessions.set(root, session)
    if (rootIsLeaf) this.#setLeaves(session, [root])
    else this.#loadNode(session, root)
    this.#askForSources(session)
    for (const peer of this.#connected.keys()) {
      if (session.opening.size >= this.#config.peersPerSessionMax) break
      this.#open(session, peer)
    }
  }

  #askForSources(session: Session): void {
    session.sourcesAskedAt = this.#now
    this.#push({ type: 'find-sources', root: session.root })
  }

  #onSources(root: ContentKey, sources: readonly Source[]): void {
    const session = this.#sessions.get(root)
    if (session === undefined || session.phase === 'complete') return
    for (const { peer, addresses } of sources) {
      if (peer === this.#self || this.#isBanned(peer) || session.absent.has(peer)) continue
      if (this.#connected.has(peer)) {
        this.#open(session, peer)
        continue
      }
      if (session.peers.size + session.opening.size + this.#diallingFor(root) >= this.#config.peersPerSessionMax) break
      let roots = this.#dialling.get(peer)
      if (roots === undefined) {
        roots = new Set()
        this.#dialling.set(peer, roots)
        this.#push({ type: 'dial', peer, addresses })
      }
      roots.add(root)
    }
  }

  #diallingFor(root: ContentKey): number {
    let count = 0
    for (const roots of this.#dialling.values()) if (roots.has(root)) count++
    return count
  }

  #closeSession(root: ContentKey, reason: SwarmFailure, detail: string): void {
    const session = this.#sessions.get(root)
    if (session === undefined) return
    this.#deleteSession(session)
    for (const peer of session.peers.values()) {
      peer.active = false
      this.#uploadWaiting.delete(peer)
      this.#send(peer.id, { type: 'absent', root })
    }
    this.#downloadWaiting.delete(session)
    if (session.fetching && session.phase !== 'complete') this.#emit({ type: 'failed', root, reason, detail })
  }

  // ---- the DAG -----------------------------------------------------------------------

  #loadNode(session: Session, cid: string): void {
    if (session.children.has(cid) || session.nodesLoading.has(cid)) return
    session.nodesLoading.add(cid)
    this.#push({ type: 'load-node', root: session.root, cid })
  }

  #onNodeLoaded(root: ContentKey, cid: string, children: readonly DagChild[] | undefined): void {
    const session = this.#sessions.get(root)
    if (session === undefined || !session.nodesLoading.delete(cid)) return
    if (children === undefined) session.nodesMissing.add(cid)
    else this.#addNode(session, cid, children)
    this.#advanceDag(session)
  }

  #addNode(session: Session, cid: string, children: readonly DagChild[]): void {
    session.children.set(cid, children)
    for (const child of children) if (!child.leaf) this.#loadNode(session, child.cid)
  }

  /** Asks for missing inner nodes, or, once every one is known, lists the leaves. */
  #advanceDag(session: Session): void {
    if (session.phase !== 'dag') return
    if (session.nodesLoading.size === 0 && session.nodesMissing.size === 0 && session.nodeRequests.size === 0 && session.storing.size === 0) {
      return this.#setLeaves(session, this.#leavesInOrder(session))
    }
    this.#requestNodes(session)
  }

  #requestNodes(session: Session): void {
    for (const cid of session.nodesMissing) {
      const peer = this.#leastBusyDagHolder(session)
      if (peer === undefined) return
      session.nodesMissing.delete(cid)
      session.nodeRequests.set(cid, { peer: peer.id, at: this.#now })
      peer.outstanding.set(cid, this.#now)
      session.requestsExpireAt = Math.min(session.requestsExpireAt, this.#now + this.#config.nodeRequestTimeoutMs)
      this.counters.requestsSent++
      this.#send(peer.id, { type: 'request', root: session.root, block: cid })
    }
  }

  #leastBusyDagHolder(session: Session): SessionPeer | undefined {
    let best: SessionPeer | undefined
    for (const peer of session.peers.values()) {
      if (peer.bits === undefined || peer.dagFailed) continue
      if (best === undefined || peer.outstanding.size < best.outstanding.size) best = peer
    }
    return best
  }

  /** The leaves in depth-first order: the order of the file's bytes. */
  #leavesInOrder(session: Session): string[] {
    const leaves: string[] = []
    const visit = (cid: string, depth: number): void => {
      // A DAG is acyclic by construction (a node cannot contain its own hash); depth only guards a bug.
      if (depth > 64) throw new Error(`DAG deeper than 64 under ${session.root}`)
      for (const child of session.children.get(cid)!) {
        if (child.leaf) leaves.push(child.cid)
        else visit(child.cid, depth + 1)
      }
    }
    visit(session.root, 0)
    return leaves
  }

  #setLeaves(session: Session, leaves: string[]): void {
    if (leaves.length === 0) {
      // An inner node without links (an empty file or directory): nothing more to fetch.
      session.leaves = leaves
      session.held = new Bitfield(0)
      return this.#complete(session)
    }
    session.leaves = leaves
    this.#push({ type: 'check-leaves', root: session.root, leaves })
  }

  #onLeavesChecked(root: ContentKey, held: Bitfield): void {
    const session = this.#sessions.get(root)
    if (session === undefined || session.leaves === undefined || session.held !== undefined) return
    if (held.size !== session.leafCount) throw new Error(`leaves-checked for ${root}: ${held.size} leaves, expected ${session.leafCount}`)
    session.held = held
    session.phase = 'leaves'
    session.picker = new PiecePicker(session.leafCount, held, this.#prng)
    for (const peer of session.peers.values()) {
      if (peer.bits !== undefined && peer.bits.size !== session.leafCount) {
        this.#violation(session, peer, 'leaf count differs from ours')
        continue
      }
      if (peer.bits !== undefined) session.picker.addPeer(peer.bits)
    }
    // Peers got our empty bitfield when we knew no leaves; now they learn what we hold.
    const bitfield = this.#bitfieldOf(session)
    for (const peer of session.peers.values()) this.#send(peer.id, bitfield)
    if (held.complete) return this.#complete(session)
    for (const peer of session.peers.values()) this.#updateInterest(session, peer)
  }

  // ---- messages ----------------------------------------------------------------------

  #onMessage(from: PeerId, message: SwarmMessage): void {
    const connection = this.#connected.get(from)
    // Connected means not banned: #onPeerConnected turns banned peers away, and #ban disconnects.
    if (connection === undefined) return
    if (message.type === 'bitfield') return this.#onBitfield(from, message)
    const session = this.#sessionOf(message.root)
    if (message.type === 'absent') {
      if (session === undefined) return
      session.opening.delete(from)
      session.absent.add(from)
      return this.#leaveSession(session, from)
    }
    let peer = connection.lastSessionPeer
    if (peer === undefined || !peer.active || peer.session !== session) {
      peer = session?.peers.get(from)
      connection.lastSessionPeer = peer
    }
    if (session === undefined || peer === undefined) {
      if (message.type === 'block') this.#unsolicited(connection)
      // Anything else may be a late message of a session that just closed: ignored.
      return
    }
    session.lastActiveAt = this.#now
    switch (message.type) {
      case 'have': return this.#onHave(session, peer, message.leaves)
      case 'interested': return this.#onInterested(session, peer, true)
      case 'not-interested': return this.#onInterested(session, peer, false)
      case 'choke': return this.#onChoke(session, peer)
      case 'unchoke':
        peer.peerChoking = false
        return this.#requestMore(session, peer)
      case 'request': return this.#onRequest(session, peer, message.block)
      case 'cancel': return this.#onCancel(peer, message.block)
      case 'block': return this.#onBlock(session, peer, message.block, message.data)
      case 'reject': return this.#onReject(session, peer, message.block, message.reason)
    }
  }

  #onBitfield(from: PeerId, message: Extract<SwarmMessage, { type: 'bitfield' }>): void {
    const session = this.#sessions.get(message.root)
    if (session === undefined) return this.#awaitLookup(from, message)
    let peer = session.peers.get(from)
    if (peer === undefined) {
      const sentVersion = session.opening.get(from)
      const initiated = session.opening.delete(from)
      if (session.peers.size >= this.#config.peersPerSessionMax) {
        this.counters.sessionsRefused++
        if (!initiated) this.#send(from, { type: 'absent', root: session.root })
        return
      }
      peer = new SessionPeer(from, this.#connected.get(from)!, session, this.#now, this.#config.rateWindowMs)
      session.peers.set(from, peer)
      if (session.offers !== undefined) peer.advertised = new Bitfield(session.leafCount)
      // Our bitfield went out when we opened; what we learnt since (the leaves, the leaves we got)
      // went only to session peers, so they hear it now.
      if (!initiated || sentVersion !== this.#bitfieldVersion(session)) this.#send(from, this.#bitfieldOf(session, peer))
    }
    session.lastActiveAt = this.#now
    if (message.leafCount === 0 && message.dagHeld !== true) return
    if (session.leaves !== undefined && message.leafCount !== session.leafCount) return this.#violation(session, peer, 'leaf count differs from ours')
    const bits = new Bitfield(message.leafCount, message.bits.slice())
    // A second bitfield replaces the first (sent before they knew the leaves, or when they completed).
    if (session.picker !== undefined) {
      if (peer.bits === undefined) session.picker.addPeer(bits)
      else session.picker.replacePeer(peer.bits, bits)
    }
    if (session.seen !== undefined) {
      const seen = session.seen
      bits.forEach((leaf) => seen[leaf]!++, peer.bits)
    }
    peer.bits = bits
    peer.lastNewLeafAt = this.#now
    if (this.#bothComplete(session, peer)) return
    if (session.picker !== undefined) this.#updateInterest(session, peer)
    else if (session.phase === 'dag') this.#requestNodes(session)
    if (peer.advertised === undefined) return
    this.#offer(session, peer, OFFERED_LEAVES_PER_PEER)
    // Offered nothing (all it lacks looks spread), it never says interested, nor then not-interested.
    this.#checkStallAt(session, peer)
  }

  /**
   * Initial seeding (BEP 16's super-seeding, simplified): a publisher tells each peer only of
   * a few leaves it lacks, and of one more for each block it sends, or of a few more when it
   * unchokes the peer or the peer has them all (it says not-interested). First the leaves it
   * never sent, so that its uplink carries each leaf once before any twice, rather than
   * whichever leaves look rare in each downloader's neighbourhood, which in a large swarm
   * are mostly ones it has sent already: the swarm gets every leaf in about F/u_s, and copies
   * from one another. Then those its session peers hold least (as BEP 16 watches a piece
   * spread before offering more): a leaf sent to a peer that does not pass it on is sent again.
   */
  #offer(session: Session, peer: SessionPeer, count: number): void {
    const uploads = session.uploads!
    const seen = session.seen!
    const offers = session.offers!
    const advertised = peer.advertised!
    const bits = peer.bits
    const leafCount = session.leafCount
    // A peer that lacks only its last few leaves may lack exactly those its neighbours are slow
    // to give: it is offered any, spread or not, so that its download does not trail.
    const finishing = peer.stalled || (bits !== undefined && leafCount - bits.count <= Math.ceil(leafCount * FINISHING_SHARE))
    const offered: number[] = []
    while (offered.length < count) {
      let best = -1
      let bestKey = Infinity
      // From the cursor on, so that ties go round the leaves rather than to the first ones.
      for (let step = 0, leaf = session.offerCursor; step < leafCount; step++, leaf = leaf + 1 === leafCount ? 0 : leaf + 1) {
        const sent = uploads[leaf]!
        // A leaf sent and held by several of our peers has spread: a publisher need not offer it again.
        if (sent > 0 && seen[leaf]! >= INITIAL_SEED_SPREAD && !finishing) continue
        const key = (sent === 0 ? 0 : 2 ** 40 + seen[leaf]! * 2 ** 24 + Math.min(sent, 255) * 2 ** 16) + Math.min(offers[leaf]!, 65_535)
        if (key >= bestKey || advertised.has(leaf) || bits?.has(leaf) === true) continue
        best = leaf
        bestKey = key
      }
      if (best < 0) break
      advertised.add(best)
      offers[best]!++
      offered.push(best)
      session.offerCursor = best + 1 === leafCount ? 0 : best + 1
    }
    if (offered.length > 0) this.#send(peer.id, { type: 'have', root: session.root, leaves: offered })
  }

  /**
   * Initial seeding: a peer that lacks leaves, has every leaf offered to it (it is not
   * interested) and has announced no new leaf for STALLED_PEER_MS gets nothing from its
   * neighbours: the leaves it lacks look spread, but the peers that hold them do not pass them
   * on (poisoners that trade only among themselves serve everyone else corrupt copies). What
   * looks spread is offered to it from then on, as to a finishing peer: its neighbours failed it once.
   */
  #offerToStalled(session: Session): void {
    session.stallCheckAt = Infinity
    for (const peer of session.peers.values()) {
      if (peer.advertised === undefined || peer.bits === undefined || peer.peerInterested || peer.bits.complete) continue
      const stalledAt = peer.lastNewLeafAt + STALLED_PEER_MS
      if (stalledAt > this.#now) {
        session.stallCheckAt = Math.min(session.stallCheckAt, stalledAt)
        continue
      }
      peer.stalled = true
      this.#offer(session, peer, OFFERED_LEAVES_PER_PEER)
      // One that stays uninterested in what it lacks is offered more a stall later, not at once.
      session.stallCheckAt = Math.min(session.stallCheckAt, this.#now + STALLED_PEER_MS)
    }
  }

  /** A peer of an initial seed that lacks leaves and is not interested in us is looked at again once it may have stalled. */
  #checkStallAt(session: Session, peer: SessionPeer): void {
    if (peer.peerInterested || peer.bits === undefined || peer.bits.complete) return
    session.stallCheckAt = Math.min(session.stallCheckAt, Math.max(this.#now, peer.lastNewLeafAt) + STALLED_PEER_MS)
  }

  /** Two peers holding everything have nothing to trade: the session ends, and its slot goes to someone else. */
  #bothComplete(session: Session, peer: SessionPeer): boolean {
    if (session.phase !== 'complete' || peer.bits?.complete !== true) return false
    this.#leaveSession(session, peer.id)
    this.#send(peer.id, { type: 'absent', root: session.root })
    return true
  }

  #awaitLookup(from: PeerId, message: Extract<SwarmMessage, { type: 'bitfield' }>): void {
    let waiting = this.#lookups.get(message.root)
    if (waiting === undefined) {
      if (this.#lookups.size >= LOOKUPS_PENDING_MAX) return this.#refuseLookup(from, message.root)
      waiting = new Map()
      this.#lookups.set(message.root, waiting)
      this.#push({ type: 'lookup-content', root: message.root })
    }
    if (waiting.size >= LOOKUP_WAITERS_MAX && !waiting.has(from)) return this.#refuseLookup(from, message.root)
    waiting.set(from, message)
  }

  #refuseLookup(peer: PeerId, root: ContentKey): void {
    this.counters.lookupsRefused++
    this.#send(peer, { type: 'absent', root })
  }

  #onContent(root: ContentKey, content: { leaves: readonly string[]; nodes: readonly string[] } | undefined): void {
    const waiting = this.#lookups.get(root)
    this.#lookups.delete(root)
    if (waiting === undefined) return
    if (this.#sessions.has(root)) {
      // A fetch of the same content started meanwhile: its session answers them.
      for (const [peer, message] of waiting) if (this.#connected.has(peer)) this.#onBitfield(peer, message)
      return
    }
    if (content === undefined) {
      for (const peer of waiting.keys()) this.#send(peer, { type: 'absent', root })
      return
    }
    const session = new Session(root, false, 'rarest', 'complete', this.#now, this.#config, this.#prng)
    for (const node of content.nodes) session.children.set(node, [])
    session.leaves = content.leaves
    session.held = Bitfield.full(content.leaves.length)
    if (this.#config.initialSeeding) {
      session.uploads = new Uint32Array(content.leaves.length)
      session.seen = new Uint16Array(content.leaves.length)
      session.offers = new Uint32Array(content.leaves.length)
    }
    this.#sessions.set(root, session)
    for (const [peer, message] of waiting) if (this.#connected.has(peer)) this.#onBitfield(peer, message)
  }

  #onHave(session: Session, peer: SessionPeer, leaves: number[]): void {
    const bits = peer.bits
    if (bits === undefined) return this.#violation(session, peer, 'have before a bitfield with the leaf count')
    for (const leaf of leaves) {
      if (leaf >= bits.size) return this.#violation(session, peer, `have of leaf ${leaf} of ${bits.size}`)
      if (!bits.add(leaf)) continue
      peer.lastNewLeafAt = this.#now
      if (session.seen !== undefined) session.seen[leaf]!++
      if (session.picker === undefined) continue
      session.picker.increment(leaf)
      if (!session.held!.has(leaf)) peer.usefulCount++
    }
    if (this.#bothComplete(session, peer) || session.phase !== 'leaves' || peer.usefulCount === 0) return
    if (!peer.amInterested) this.#setInterested(session, peer, true)
    else this.#keepInterest(session, peer)
    this.#requestMore(session, peer)
  }

  #onInterested(session: Session, peer: SessionPeer, interested: boolean): void {
    if (peer.peerInterested === interested) return
    peer.peerInterested = interested
    if (!peer.amChoking) session.slotsUsed += interested ? 1 : -1
    // An initial seed's peer that has every leaf offered to it is offered more.
    if (!interested && peer.advertised !== undefined && peer.bits !== undefined) {
      this.#offer(session, peer, OFFERED_LEAVES_PER_PEER)
      this.#checkStallAt(session, peer)
    }
    if (!interested && !peer.amChoking) {
      this.#setChoking(session, peer, true)
      session.optimistic.delete(peer.id)
    }
    this.#fillSlots(session)
  }

  #onChoke(session: Session, peer: SessionPeer): void {
    peer.peerChoking = true
    // BEP 3: a choke discards the requests in flight. Inner nodes are served regardless.
    peer.droppedRequests = undefined
    for (const block of [...peer.outstanding.keys()]) {
      if (typeof block !== 'number') continue
      this.#forgetRequest(session, peer, block)
      ;(peer.droppedRequests ??= new Set()).add(block)
    }
  }

  #onRequest(session: Session, peer: SessionPeer, block: BlockRef): void {
    const cid = session.cidOf(block)
    const connection = peer.connection
    if (typeof block === 'number') {
      if (cid === undefined || !session.held?.has(block)) return this.#reject(session, peer, block, 'absent')
      if (peer.amChoking) return this.#reject(session, peer, block, 'choked')
    } else if (cid === undefined || !session.children.has(block)) {
      return this.#reject(session, peer, block, 'absent')
    }
    if (peer.queue.length + peer.readingCount >= this.#config.queuedRequestsPerPeerMax) {
      this.counters.overloadedRequests++
      if (++connection.overloadedRequests >= this.#config.overloadedRequestsMax) return this.#drop(peer.id, 'request-flood')
      return this.#reject(session, peer, block, 'overloaded')
    }
    if (peer.queue.includes(block)) return
    peer.cancelled?.delete(block)
    peer.queue.push(block)
    this.#pumpReads(session, peer)
  }

  #onCancel(peer: SessionPeer, block: BlockRef): void {
    const index = peer.queue.indexOf(block)
    if (index >= 0) peer.queue.splice(index, 1)
    else if (peer.readingCount > 0) (peer.cancelled ??= new Set()).add(block)
  }

  #reject(session: Session, peer: SessionPeer, block: BlockRef, reason: RejectReason): void {
    this.counters.rejectsSent++
    this.#send(peer.id, { type: 'reject', root: session.root, block, reason })
  }

  #onReject(session: Session, peer: SessionPeer, block: BlockRef, reason: RejectReason): void {
    if (!peer.outstanding.has(block)) return
    this.counters.rejectsReceived++
    if (typeof block === 'string') {
      peer.outstanding.delete(block)
      session.nodeRequests.delete(block)
      session.nodesMissing.add(block)
      // A peer that claims the DAG and cannot serve its nodes is of no use to this session.
      this.#leaveSession(session, peer.id)
      this.#send(peer.id, { type: 'absent', root: session.root })
      return this.#advanceDag(session)
    }
    this.#forgetRequest(session, peer, block)
    // 'absent' for a leaf it announced is a broken promise, counted as a timeout would be.
    if (reason === 'absent' && ++peer.consecutiveTimeouts >= this.#config.requestTimeoutsMax) return this.#dropUnresponsive(session, peer)
    if (reason !== 'choked') this.#requestMoreFromAll(session)
  }

  // ---- downloading -------------------------------------------------------------------

  #updateInterest(session: Session, peer: SessionPeer): void {
    if (session.phase !== 'leaves' || peer.bits === undefined) {
      if (peer.amInterested) this.#setInterested(session, peer, false)
      return
    }
    peer.usefulCount = peer.bits.countExcept(session.held!)
    const interested = peer.usefulCount > 0
    if (!interested) {
      if (peer.amInterested) this.#loseInterest(session, peer)
      return
    }
    if (!peer.amInterested) this.#setInterested(session, peer, true)
    else this.#keepInterest(session, peer)
    this.#requestMore(session, peer)
  }

  /**
   * They have nothing we lack: we say not-interested only if that lasts notInterestedDelayMs.
   * Peers that progress together often get something new for us a moment later, and saying
   * not-interested at once costs the slot they gave us (they choke us) and a wait for another.
   */
  #loseInterest(session: Session, peer: SessionPeer): void {
    if (this.#config.notInterestedDelayMs === 0) return this.#setInterested(session, peer, false)
    if (peer.interestEndsAt !== Infinity) return
    peer.interestEndsAt = this.#now + this.#config.notInterestedDelayMs
    session.interestEnding.add(peer)
    session.interestCheckAt = Math.min(session.interestCheckAt, peer.interestEndsAt)
  }

  #keepInterest(session: Session, peer: SessionPeer): void {
    if (peer.interestEndsAt === Infinity) return
    peer.interestEndsAt = Infinity
    session.interestEnding.delete(peer)
  }

  #checkInterest(session: Session): void {
    session.interestCheckAt = Infinity
    for (const peer of [...session.interestEnding]) {
      if (peer.interestEndsAt > this.#now) {
        session.interestCheckAt = Math.min(session.interestCheckAt, peer.interestEndsAt)
        continue
      }
      this.#keepInterest(session, peer)
      if (peer.amInterested && peer.usefulCount === 0) this.#setInterested(session, peer, false)
    }
  }

  #setInterested(session: Session, peer: SessionPeer, interested: boolean): void {
    this.#keepInterest(session, peer)
    peer.amInterested = interested
    // Snubbing is measured from when we start wanting something from them.
    if (interested) peer.lastBlockAt = this.#now
    this.#send(peer.id, { type: interested ? 'interested' : 'not-interested', root: session.root })
  }

  #requestMoreFromAll(session: Session): void {
    for (const peer of session.peers.values()) this.#requestMore(session, peer)
  }

  /** Fills the peer's pipeline. */
  #requestMore(session: Session, peer: SessionPeer): void {
    if (session.phase !== 'leaves' || peer.peerChoking || !peer.amInterested || peer.bits === undefined) return
    const depth = this.#pipelineDepth(session, peer)
    const picker = session.picker!
    while (peer.outstanding.size < depth) {
      if (!this.#downloadBucket.ready(this.#now) || !peer.connection.downloadBucket.ready(this.#now)) {
        this.#downloadWaiting.add(session)
        return
      }
      let leaf = picker.pick(peer.bits, session.held!.count < this.#config.randomFirstCount && session.order === 'rarest' ? 'random' : session.order === 'in-order' ? 'in-order' : 'rarest')
      let endgame = false
      if (leaf < 0) {
        if (picker.candidateCount > 0) return
        leaf = this.#pickEndgame(session, peer)
        if (leaf < 0) return
        endgame = true
      }
      this.#sendRequest(session, peer, leaf, endgame)
    }
  }

  /** Little's law: blocks in flight = rate x latency; the latency is the best seen, so queueing does not feed back. */
  #pipelineDepth(session: Session, peer: SessionPeer): number {
    const { requestsPerPeerMin, requestsPerPeerMax } = this.#config
    if (peer.latencyMinMs === Infinity) return requestsPerPeerMin
    const inFlightBytes = (peer.download.bytesPerSecond(this.#now) * peer.latencyMinMs) / 1000
    const depth = Math.ceil(inFlightBytes / session.blockBytesTypical) + 1
    return Math.min(requestsPerPeerMax, Math.max(requestsPerPeerMin, depth))
  }

  /** All missing leaves are asked for: ask this peer too for the one fewest peers were asked for. */
  #pickEndgame(session: Session, peer: SessionPeer): number {
    let chosen = -1
    let chosenCount = this.#config.endgameRequestsPerBlockMax
    for (const [leaf, peers] of session.requestedFrom) {
      if (peers.length >= chosenCount || !peer.bits!.has(leaf) || peers.includes(peer.id) || session.storing.has(leaf)) continue
      chosen = leaf
      chosenCount = peers.length
    }
    return chosen
  }

  #sendRequest(session: Session, peer: SessionPeer, leaf: number, endgame: boolean): void {
    session.picker!.remove(leaf)
    const peers = session.requestedFrom.get(leaf)
    if (peers === undefined) session.requestedFrom.set(leaf, [peer.id])
    else peers.push(peer.id)
    peer.outstanding.set(leaf, this.#now)
    session.requestsExpireAt = Math.min(session.requestsExpireAt, this.#now + this.#config.requestTimeoutMs)
    // The bytes are spent when asked for, so that the limit holds whoever sends them.
    this.#downloadBucket.spend(this.#now, session.blockBytesTypical)
    peer.connection.downloadBucket.spend(this.#now, session.blockBytesTypical)
    this.counters.requestsSent++
    if (endgame) this.counters.endgameRequests++
    this.#send(peer.id, { type: 'request', root: session.root, block: leaf })
  }

  /** Drops a request of ours to `peer` (choked, rejected, timed out); the leaf is a candidate again if nobody else was asked. */
  #forgetRequest(session: Session, peer: SessionPeer, leaf: number): void {
    peer.outstanding.delete(leaf)
    const peers = session.requestedFrom.get(leaf)
    if (peers === undefined) return
    const index = peers.indexOf(peer.id)
    if (index >= 0) peers.splice(index, 1)
    if (peers.length > 0) return
    session.requestedFrom.delete(leaf)
    if (!session.storing.has(leaf) && !session.held!.has(leaf)) session.picker!.restore(leaf)
  }

  #onBlock(session: Session, peer: SessionPeer, block: BlockRef, data: BlockData): void {
    const connection = peer.connection
    if (typeof block === 'string') {
      const request = session.nodeRequests.get(block)
      if (request === undefined || request.peer !== peer.id) return this.#unsolicited(connection)
      session.nodeRequests.delete(block)
      peer.outstanding.delete(block)
      session.storing.set(block, data.byteLength)
      return this.#push({ type: 'store', root: session.root, block, cid: block, from: peer.id, data })
    }
    const sentAt = peer.outstanding.get(block)
    peer.outstanding.delete(block)
    const missing = session.phase === 'leaves' && block < session.leafCount && !session.held!.has(block) && !session.storing.has(block)
    if (!missing) {
      // A copy that lost an endgame race, or one sent before our cancel arrived.
      if (sentAt !== undefined || session.phase === 'complete') this.counters.duplicateBlocks++
      else this.#unsolicited(connection)
      return
    }
    // A block asked of this peer and then dropped (by its choke) is still welcome; one never asked for is not.
    if (sentAt === undefined && !session.requestedFrom.get(block)?.includes(peer.id) && peer.droppedRequests?.has(block) !== true) return this.#unsolicited(connection)
    peer.droppedRequests?.delete(block)
    if (sentAt !== undefined) peer.latencyMinMs = Math.min(peer.latencyMinMs, this.#now - sentAt)
    // Endgame: whoever else was asked is told not to bother.
    for (const other of session.requestedFrom.get(block) ?? []) {
      if (other === peer.id) continue
      session.peers.get(other)?.outstanding.delete(block)
      this.counters.cancelsSent++
      this.#send(other, { type: 'cancel', root: session.root, block })
    }
    session.requestedFrom.delete(block)
    session.picker!.remove(block)
    const bytes = data.byteLength
    session.storing.set(block, bytes)
    session.blockBytesTypical = Math.max(bytes, session.blockBytesTypical >>> 1, 1)
    peer.consecutiveTimeouts = 0
    peer.lastBlockAt = this.#now
    peer.download.add(this.#now, bytes)
    session.download.add(this.#now, bytes)
    this.#push({ type: 'store', root: session.root, block, cid: session.leaves![block]!, from: peer.id, data })
    this.#requestMore(session, peer)
  }

  #onStored(input: Extract<SwarmInput, { type: 'stored' }>): void {
    const session = this.#sessions.get(input.root)
    const bytes = session?.storing.get(input.block)
    if (session === undefined || bytes === undefined) return
    session.storing.delete(input.block)
    switch (input.outcome) {
      case 'ok':
        this.counters.blocksReceived++
        this.counters.bytesReceived += bytes
        session.bytesReceived += bytes
        session.peers.get(input.from)!.bytesReceived += bytes
        const connection = this.#connected.get(input.from)
        if (connection !== undefined) connection.bytesReceived += bytes
        this.#emit({ type: 'transferred', peer: input.from, root: session.root, direction: 'received', bytes })
        if (typeof input.block === 'string') {
          this.#addNode(session, input.block, input.children ?? [])
          return this.#advanceDag(session)
        }
        return this.#onLeafStored(session, input.block)
      case 'corrupt':
        this.counters.badBlocks++
        if (typeof input.block === 'string') session.nodesMissing.add(input.block)
        else session.picker!.restore(input.block)
        this.#ban(input.from)
        if (session.phase === 'dag') return this.#advanceDag(session)
        return this.#requestMoreFromAll(session)
      case 'invalid':
        return this.#closeSession(session.root, 'invalid-content', input.detail ?? `block ${String(input.block)} is not a UnixFS node`)
      case 'failed':
        return this.#closeSession(session.root, 'store-failed', input.detail ?? 'the block store refused a block')
    }
  }

  #onLeafStored(session: Session, leaf: number): void {
    const held = session.held!
    if (!held.add(leaf)) return
    for (const peer of session.peers.values()) {
      if (!peer.amInterested || --peer.usefulCount > 0) continue
      peer.usefulCount = peer.bits!.countExcept(held)
      if (peer.usefulCount === 0) this.#loseInterest(session, peer)
    }
    this.#queueHave(session, leaf)
    if (held.complete) this.#complete(session)
  }

  /**
   * A have goes at once after a quiet spell, then at most one batch per haveBatchMs: no delay
   * when leaves come seldom, one message per peer per interval when they stream in.
   */
  #queueHave(session: Session, leaf: number): void {
    session.pendingHaves.push(leaf)
    if (session.haveFlushAt !== Infinity) return
    const flushAt = session.lastHaveFlushAt + this.#config.haveBatchMs
    if (flushAt <= this.#now) return this.#flushHaves(session)
    session.haveFlushAt = flushAt
  }

  #flushHaves(session: Session): void {
    session.haveFlushAt = Infinity
    const leaves = session.pendingHaves
    if (leaves.length === 0) return
    session.pendingHaves = []
    session.lastHaveFlushAt = this.#now
    const message: SwarmMessage = { type: 'have', root: session.root, leaves }
    for (const peer of session.peers.values()) {
      const bits = peer.bits
      if (bits === undefined) {
        this.#send(peer.id, message)
        continue
      }
      // A peer's picker counts only leaves it lacks, so a have of a leaf it holds tells it
      // nothing (libtorrent's send_redundant_have off): it hears of the others only. What it
      // does not hear is exactly what it held first; our bitfield tells it all when we complete.
      let lacking = 0
      for (const leaf of leaves) if (!bits.has(leaf)) lacking++
      if (lacking === leaves.length) this.#send(peer.id, message)
      else if (lacking > 0) this.#send(peer.id, { type: 'have', root: session.root, leaves: leaves.filter((leaf) => !bits.has(leaf)) })
    }
  }

  #complete(session: Session): void {
    session.phase = 'complete'
    // Haves to a peer skip what it holds (#flushHaves): a whole bitfield tells everyone we are complete.
    session.pendingHaves = []
    session.haveFlushAt = Infinity
    const bitfield = this.#bitfieldOf(session)
    session.nodesMissing.clear()
    this.#downloadWaiting.delete(session)
    for (const peer of [...session.peers.values()]) {
      if (peer.amInterested) this.#setInterested(session, peer, false)
      // Two peers holding everything have nothing to trade: the slot goes to someone else.
      if (!this.#bothComplete(session, peer)) this.#send(peer.id, bitfield)
    }
    this.#emit({ type: 'complete', root: session.root, progress: this.#progressOf(session) })
    this.#rechoke(session, false)
  }

  // ---- uploading ---------------------------------------------------------------------

  #pumpReads(session: Session, peer: SessionPeer): void {
    while (peer.queue.length > 0 && peer.readingCount < this.#config.readsPerPeerMax) {
      if (!this.#uploadBucket.ready(this.#now) || !peer.connection.uploadBucket.ready(this.#now)) {
        this.#uploadWaiting.add(peer)
        return
      }
      const block = peer.queue.shift()!
      peer.readingCount++
      // The bytes are spent now, when the block is committed to; the exact size is settled on send.
      this.#uploadBucket.spend(this.#now, session.blockBytesTypical)
      peer.connection.uploadBucket.spend(this.#now, session.blockBytesTypical)
      this.#push({ type: 'read', to: peer.id, root: session.root, block, cid: session.cidOf(block)! })
    }
  }

  #onBlockRead(to: PeerId, root: ContentKey, block: BlockRef, data: BlockData | undefined): void {
    const session = this.#sessions.get(root)
    const peer = session?.peers.get(to)
    if (session === undefined || peer === undefined) return
    peer.readingCount--
    const settle = (data?.byteLength ?? 0) - session.blockBytesTypical
    this.#uploadBucket.spend(this.#now, settle)
    peer.connection.uploadBucket.spend(this.#now, settle)
    if (peer.cancelled?.delete(block) === true) return this.#pumpReads(session, peer)
    if (data === undefined) {
      this.#reject(session, peer, block, 'absent')
    } else if (typeof block === 'number' && peer.amChoking) {
      // Choked while the read was in flight: BEP 3 drops its requests.
    } else {
      const bytes = data.byteLength
      this.counters.blocksSent++
      this.counters.bytesSent += bytes
      session.bytesSent += bytes
      peer.bytesSent += bytes
      peer.connection.bytesSent += bytes
      peer.upload.add(this.#now, bytes)
      session.lastActiveAt = this.#now
      this.#send(to, { type: 'block', root, block, data })
      this.#emit({ type: 'transferred', peer: to, root, direction: 'sent', bytes })
      if (peer.advertised !== undefined && typeof block === 'number') {
        session.uploads![block]!++
        this.#offer(session, peer, 1)
      }
    }
    this.#pumpReads(session, peer)
  }

  #uploadReadyAt(): Millis {
    let readyAt = Infinity
    for (const peer of this.#uploadWaiting) readyAt = Math.min(readyAt, Math.max(this.#uploadBucket.readyAt(this.#now), peer.connection.uploadBucket.readyAt(this.#now)))
    return readyAt
  }

  // ---- choking -----------------------------------------------------------------------

  /**
   * Tit-for-tat (BEP 3, mainline): the interested peers that sent us most lately (not
   * snubbing us) get the regular slots; a holder of everything serves round-robin or the
   * fastest. One slot rotates at random, new peers weighted up and apparent free-riders
   * down: the only way a newcomer can earn a slot, and the only way a free-rider gets
   * anything.
   */
  #rechoke(session: Session, rotateOptimistic: boolean): void {
    const ranked = this.#rankForUnchoke(session)
    const regular = new Set(ranked.slice(0, this.#config.unchokeSlots))
    for (const id of [...session.optimistic]) {
      const peer = session.peers.get(id)
      // One that has taken its fill and given nothing back by a rechoke has had its chance.
      const spent = peer !== undefined && session.phase !== 'complete' && this.#freeRiding(session, peer)
      if (rotateOptimistic || peer === undefined || !peer.peerInterested || regular.has(peer) || spent) session.optimistic.delete(id)
    }
    this.#pickOptimistic(session, regular)
    for (const peer of session.peers.values()) {
      const unchoke = regular.has(peer) || session.optimistic.has(peer.id)
      if (unchoke === peer.amChoking) this.#setChoking(session, peer, !unchoke)
    }
    this.#fillSlots(session)
  }

  #rankForUnchoke(session: Session): SessionPeer[] {
    const candidates: SessionPeer[] = []
    for (const peer of session.peers.values()) {
      if (!this.#rankable(session, peer)) continue
      peer.rankKey = this.#rankKeyOf(session, peer)
      candidates.push(peer)
    }
    // A seeded shuffle first: equal keys (all zero at the start) then fall in random order.
    shuffle(candidates, this.#prng)
    return candidates.sort((a, b) => b.rankKey - a.rankKey)
  }

  /** Interested, and not snubbing us (a leecher does not reward a peer that stopped sending). */
  #rankable(session: Session, peer: SessionPeer): boolean {
    if (!peer.peerInterested) return false
    if (session.phase === 'complete') return true
    // A leecher's regular slots reward reciprocation: a peer the ledger shows taking and never
    // giving gets only the optimistic slot (at a low weight), even when a regular one is idle.
    if (this.#freeRiding(session, peer)) return false
    return !peer.amInterested || this.#now - peer.lastBlockAt <= this.#config.snubbedAfterMs
  }

  /** The ledger is the node's memory of who gives back: took several blocks, returned nothing. */
  #freeRiding(session: Session, peer: SessionPeer): boolean {
    const connection = peer.connection
    return connection.bytesReceived === 0 && connection.bytesSent >= FREE_RIDER_BLOCKS * session.blockBytesTypical
  }

  /**
   * Higher ranks first: what they gave us lately. As a seed: the peers that ever gave us a
   * block (the ledger) before those that never did, each in round-robin (least served first)
   * or by their rate; a free-rider is served only when no contributor wants anything.
   */
  #rankKeyOf(session: Session, peer: SessionPeer): number {
    if (session.phase !== 'complete') return peer.download.bytesPerSecond(this.#now)
    const contributor = peer.connection.bytesReceived > 0 ? SEED_CONTRIBUTOR_RANK : 0
    if (this.#config.seedUnchoke === 'upload-rate') return contributor + peer.upload.bytesPerSecond(this.#now)
    return contributor - peer.bytesSent
  }

  /** The best-ranked choked candidate, ties broken at random: #rankForUnchoke's first choked one, in O(peers). */
  #bestChoked(session: Session): SessionPeer | undefined {
    let best: SessionPeer | undefined
    let ties = 0
    for (const peer of session.peers.values()) {
      if (!peer.amChoking || !this.#rankable(session, peer)) continue
      const key = this.#rankKeyOf(session, peer)
      if (best === undefined || key > best.rankKey) {
        best = peer
        ties = 1
      } else if (key === best.rankKey && this.#prng.int(++ties) === 0) {
        best = peer
      } else {
        continue
      }
      peer.rankKey = key
    }
    return best
  }

  #pickOptimistic(session: Session, regular: Set<SessionPeer>): void {
    while (session.optimistic.size < this.#config.optimisticUnchokeSlots) {
      const choices: SessionPeer[] = []
      const weights: number[] = []
      let total = 0
      for (const peer of session.peers.values()) {
        if (!peer.peerInterested || regular.has(peer) || session.optimistic.has(peer.id)) continue
        const weight = this.#optimisticWeight(session, peer)
        choices.push(peer)
        weights.push(weight)
        total += weight
      }
      if (choices.length === 0) return
      let point = this.#prng.next() * total
      let chosen = choices[choices.length - 1]!
      for (let index = 0; index < choices.length; index++) {
        point -= weights[index]!
        if (point < 0) {
          chosen = choices[index]!
          break
        }
      }
      session.optimistic.add(chosen.id)
    }
  }

  #optimisticWeight(session: Session, peer: SessionPeer): number {
    if (this.#freeRiding(session, peer)) return FREE_RIDER_WEIGHT
    return this.#now - peer.joinedAt < 3 * this.#config.optimisticRotateMs ? NEW_PEER_WEIGHT : 1
  }

  /** Between rechokes, a freed slot goes at once to the best-ranked choked peer. */
  #fillSlots(session: Session): void {
    let unchokedCount = session.slotsUsed
    const slots = this.#config.unchokeSlots + this.#config.optimisticUnchokeSlots
    if (unchokedCount >= slots) return
    if (unchokedCount + 1 === slots) {
      // One slot freed (the usual case, on every not-interested): no need to rank everyone.
      const best = this.#bestChoked(session)
      if (best !== undefined) this.#setChoking(session, best, false)
      return
    }
    for (const peer of this.#rankForUnchoke(session)) {
      if (!peer.amChoking) continue
      this.#setChoking(session, peer, false)
      if (++unchokedCount >= slots) return
    }
  }

  #setChoking(session: Session, peer: SessionPeer, choking: boolean): void {
    if (peer.peerInterested && peer.amChoking !== choking) session.slotsUsed += choking ? -1 : 1
    peer.amChoking = choking
    if (!choking && peer.advertised !== undefined && peer.bits !== undefined) this.#offer(session, peer, OFFERED_LEAVES_PER_PEER)
    if (choking) {
      // BEP 3: a choke drops the peer's queued requests; inner-node requests stay.
      peer.queue = peer.queue.filter((block) => typeof block === 'string')
    }
    this.#send(peer.id, { type: choking ? 'choke' : 'unchoke', root: session.root })
  }

  // ---- misbehaviour and leaving ------------------------------------------------------

  #unsolicited(connection: ConnectedPeer): void {
    this.counters.unsolicitedBlocks++
    if (++connection.unsolicitedBlocks >= this.#config.unsolicitedBlocksMax) this.#drop(connection.id, 'unsolicited-blocks')
  }

  #violation(session: Session, peer: SessionPeer, detail: string): void {
    void detail
    this.counters.protocolViolations++
    this.#emit({ type: 'misbehaved', peer: peer.id, reason: 'protocol-violation' })
    this.#leaveSession(session, peer.id)
    session.absent.add(peer.id)
    this.#send(peer.id, { type: 'absent', root: session.root })
  }

  #dropUnresponsive(session: Session, peer: SessionPeer): void {
    this.counters.peersDroppedUnresponsive++
    this.#emit({ type: 'misbehaved', peer: peer.id, reason: 'unresponsive' })
    this.#leaveSession(session, peer.id)
    session.absent.add(peer.id)
    this.#send(peer.id, { type: 'absent', root: session.root })
    this.#requestMoreFromAll(session)
  }

  #ban(peer: PeerId): void {
    this.counters.peersBanned++
    this.#banned.set(peer, this.#now + this.#config.badPeerBanMs)
    this.#drop(peer, 'bad-block')
  }

  #isBanned(peer: PeerId): boolean {
    const until = this.#banned.get(peer)
    if (until === undefined) return false
    if (until > this.#now) return true
    this.#banned.delete(peer)
    return false
  }

  /** Disconnects a peer for good reason; its sessions forget it at once. */
  #drop(peer: PeerId, reason: Misbehaviour): void {
    if (reason !== 'bad-block' || this.#connected.has(peer)) this.#emit({ type: 'misbehaved', peer, reason })
    this.#onPeerDisconnected(peer)
    this.#push({ type: 'disconnect', peer, reason })
  }

  #leaveSession(session: Session, id: PeerId): void {
    const peer = session.peers.get(id)
    if (peer === undefined) return
    peer.active = false
    session.interestEnding.delete(peer)
    if (!peer.amChoking && peer.peerInterested) session.slotsUsed--
    session.peers.delete(id)
    session.optimistic.delete(id)
    this.#uploadWaiting.delete(peer)
    if (peer.bits !== undefined && session.picker !== undefined) session.picker.removePeer(peer.bits)
    if (peer.bits !== undefined && session.seen !== undefined) {
      const seen = session.seen
      peer.bits.forEach((leaf) => seen[leaf]!--)
    }
    for (const block of peer.outstanding.keys()) {
      if (typeof block === 'number') {
        this.#forgetRequest(session, peer, block)
      } else {
        session.nodeRequests.delete(block)
        session.nodesMissing.add(block)
      }
    }
    if (!peer.amChoking) this.#fillSlots(session)
    if (session.phase === 'dag') this.#advanceDag(session)
    else this.#requestMoreFromAll(session)
  }

  // ---- time --------------------------------------------------------------------------

  #onTick(): void {
    const now = this.#now
    for (const session of [...this.#sessions.values()]) {
      if (session.haveFlushAt <= now) this.#flushHaves(session)
      if (session.interestCheckAt <= now) this.#checkInterest(session)
      if (session.stallCheckAt <= now) this.#offerToStalled(session)
      if (session.nextRechokeAt <= now) {
        const rotate = session.nextOptimisticAt <= now
        if (rotate) session.nextOptimisticAt = now + this.#config.optimisticRotateMs
        session.nextRechokeAt = now + this.#config.rechokeIntervalMs
        this.#rechoke(session, rotate)
      }
      if (session.nextProgressAt <= now) {
        session.nextProgressAt = session.fetching && session.phase !== 'complete' ? now + this.#config.progressIntervalMs : Infinity
        this.#emit({ type: 'progress', root: session.root, progress: this.#progressOf(session) })
      }
      // Each test below is the same sum as nextDeadline's: `now - t >= d` may round otherwise, and leave a deadline at now.
      if (session.fetching && session.phase !== 'complete') {
        if (session.requestsExpireAt <= now) this.#expireRequests(session)
        if (session.peers.size < this.#config.sourcesWantedMin && session.sourcesAskedAt + this.#config.sourcesRefreshMs <= now) this.#askForSources(session)
      } else if (session.peers.size === 0 && session.lastActiveAt + this.#config.idleSessionMs <= now) {
        this.#deleteSession(session)
      }
    }
    if (this.#uploadWaiting.size > 0) {
      const waiting = [...this.#uploadWaiting]
      this.#uploadWaiting.clear()
      for (const peer of waiting) {
        if (peer.active) this.#pumpReads(peer.session, peer)
      }
    }
    if (this.#downloadWaiting.size > 0) {
      const waiting = [...this.#downloadWaiting]
      this.#downloadWaiting.clear()
      for (const session of waiting) this.#requestMoreFromAll(session)
    }
  }

  #expireRequests(session: Session): void {
    const { requestTimeoutMs, nodeRequestTimeoutMs } = this.#config
    for (const peer of [...session.peers.values()]) {
      let expired = false
      for (const [block, sentAt] of peer.outstanding) {
        // The same sum as #firstExpiryOf's: `now - timeout` may round otherwise, and leave a deadline at now.
        if (sentAt + (typeof block === 'number' ? requestTimeoutMs : nodeRequestTimeoutMs) > this.#now) continue
        expired = true
        this.counters.requestTimeouts++
        this.#send(peer.id, { type: 'cancel', root: session.root, block })
        if (typeof block === 'number') {
          this.#forgetRequest(session, peer, block)
        } else {
          peer.outstanding.delete(block)
          peer.dagFailed = true
          session.nodeRequests.delete(block)
          session.nodesMissing.add(block)
        }
      }
      if (!expired) continue
      if (++peer.consecutiveTimeouts >= this.#config.requestTimeoutsMax) this.#dropUnresponsive(session, peer)
      else if (session.phase === 'dag') this.#advanceDag(session)
      else this.#requestMoreFromAll(session)
    }
    session.requestsExpireAt = this.#firstExpiryOf(session)
  }

  #firstExpiryOf(session: Session): Millis {
    const { requestTimeoutMs, nodeRequestTimeoutMs } = this.#config
    let first = Infinity
    for (const peer of session.peers.values()) {
      for (const [block, sentAt] of peer.outstanding) first = Math.min(first, sentAt + (typeof block === 'number' ? requestTimeoutMs : nodeRequestTimeoutMs))
    }
    return first
  }

  #progressOf(session: Session): SessionProgress {
    let sendingPeerCount = 0
    for (const peer of session.peers.values()) if (!peer.peerChoking) sendingPeerCount++
    return {
      phase: session.phase,
      leafCount: session.leafCount,
      heldCount: session.held?.count ?? 0,
      bytesReceived: session.bytesReceived,
      bytesSent: session.bytesSent,
      peerCount: session.peers.size,
      sendingPeerCount,
      bytesPerSecond: session.download.bytesPerSecond(this.#now),
    }
  }

  #send(to: PeerId, message: SwarmMessage): void {
    this.#actions.push({ type: 'send', to, message })
  }

  #emit(event: SwarmEvent): void {
    this.#actions.push({ type: 'emit', event })
  }

  #push(action: SwarmAction): void {
    this.#actions.push(action)
  }
}

function shuffle<T>(items: T[], prng: Prng): void {
  for (let index = items.length - 1; index > 0; index--) {
    const other = prng.int(index + 1)
    const item = items[index]!
    items[index] = items[other]!
    items[other] = item
  }
}
