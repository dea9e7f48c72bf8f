/**
 * The node's side of the swarm protocol in simulation: what node/swarm.ts does for a real
 * node (a block store, reads, DAG lookups, sources), for one virtual file whose blocks have
 * a length and no bytes, only the CID their bytes would hash to (VirtualBlock). SwarmHost
 * wraps a peer's swarm core (the real SwarmCore, or an adversary wrapped around it) and
 * answers the core's non-network actions itself, inside poll(), by handing the core the
 * answer at once:
 *
 *   load-node       the root's links if this peer holds the root, else none
 *   check-leaves    the leaves this peer holds (none for a downloader that starts afresh)
 *   store           verifies the block against its CID, as node/swarm.ts hashes it: one that
 *                   does not match is answered 'corrupt' (the core bans the sender), else
 *                   stored and answered 'ok'
 *   read            the block if held (the file's true block: a host stores only what verified)
 *   lookup-content  the whole file if this peer holds it
 *   find-sources    a tracker's answer (see SwarmObserver.sources)
 *
 * The core is between two handle() calls while it is polled, so answering there is the
 * same as the node answering right after it: no simulator event is spent on an answer, and
 * the simulator only sees send, dial, disconnect. Events the core emits go to the observer
 * (the scenario's measurements), as do the blocks and messages it receives.
 */
import { Bitfield } from '../../core/swarm/bitfield.ts'
import type { BlockData, BlockRef, ContentKey, SwarmMessage } from '../../core/swarm/messages.ts'
import { asContentKey } from '../../core/swarm/messages.ts'
import type { DagChild, Source, SwarmAction, SwarmEvent, SwarmInput } from '../../core/swarm/swarm.ts'
import type { Core, Millis, PeerId } from '../../core/sans-io.ts'
import type { AnyAction, SimCore, SimInput } from '../simulator.ts'

/**
 * A virtual block: its length, and the CID of the bytes it stands for, what a real node
 * would compute by hashing them. It verifies against a CID when the two are the same.
 */
export interface VirtualBlock extends BlockData {
  readonly hashesTo: string
}

/** Whether `data` verifies against `cid`: what checkBlock does with real bytes. */
export function verifiesAgainst(data: BlockData, cid: string): boolean {
  return (data as Partial<VirtualBlock>).hashesTo === cid
}

/** A copy of `data` with its bytes changed: as long, but it hashes to no CID of the file. */
export function tamperedBlock(data: BlockData): VirtualBlock {
  return { byteLength: data.byteLength, hashesTo: `tampered:${(data as Partial<VirtualBlock>).hashesTo ?? ''}` }
}

/** One file as a UnixFS DAG of the unixfs-v1-2025 profile: raw leaves under one root node. */
export interface VirtualFile {
  root: ContentKey
  leafCount: number
  leafBytes: number
  /** The root node's encoded size: what fetching the DAG costs. */
  rootNodeBytes: number
  /** The leaves' bytes: F. */
  fileBytes: number
  leaves: readonly string[]
  rootChildren: readonly DagChild[]
  /** The inner nodes (only the root). */
  nodes: readonly string[]
  /** Each leaf's block, in leaf order. */
  leafBlocks: readonly VirtualBlock[]
  rootBlock: VirtualBlock
}

/** unixfs-v1-2025 puts at most 1,024 links in a node: one root node holds up to 1,024 leaves. */
export const UNIXFS_LINKS_PER_NODE_MAX = 1_024
/** A CIDv1 (raw or dag-pb) with a sha2-256 multihash. */
const CID_BYTES = 36

/**
 * The dag-pb root node of a file of `leafCount` leaves of `leafBytes`: per link, a Hash
 * (tag, length, CID), an empty Name (tag, length) and a Tsize (tag, varint), each link
 * length-prefixed; then the UnixFS Data: type, filesize, and a blocksize per leaf. For
 * 1,024 leaves of 1 MiB it is 51,211 bytes.
 */
export function unixfsRootNodeBytes(leafCount: number, leafBytes: number): number {
  const link = 2 + CID_BYTES + 2 + 1 + varintBytes(leafBytes)
  const links = leafCount * (1 + varintBytes(link) + link)
  const data = 2 + 1 + varintBytes(leafCount * leafBytes) + leafCount * (1 + varintBytes(leafBytes))
  return links + 1 + varintBytes(data) + data
}

function varintBytes(value: number): number {
  let bytes = 1
  while (value >= 128) {
    value = Math.floor(value / 128)
    bytes++
  }
  return bytes
}

export function virtualFile(name: string, leafCount: number, leafBytes: number): VirtualFile {
  if (!(Number.isInteger(leafCount) && leafCount >= 1 && leafCount <= UNIXFS_LINKS_PER_NODE_MAX)) {
    throw new RangeError(`a one-level DAG holds 1 to ${UNIXFS_LINKS_PER_NODE_MAX} leaves, not ${leafCount}`)
  }
  const root = asContentKey(`${name}-root`)
  const leaves = Array.from({ length: leafCount }, (_, index) => `${name}-leaf-${index}`)
  const rootNodeBytes = unixfsRootNodeBytes(leafCount, leafBytes)
  return {
    root,
    leafCount,
    leafBytes,
    rootNodeBytes,
    fileBytes: leafCount * leafBytes,
    leaves,
    rootChildren: leaves.map((cid) => ({ cid, leaf: true })),
    nodes: [root],
    leafBlocks: leaves.map((cid) => Object.freeze({ byteLength: leafBytes, hashesTo: cid })),
    rootBlock: Object.freeze({ byteLength: rootNodeBytes, hashesTo: root }),
  }
}

/** What the scenario learns from the hosts, and the tracker they ask. */
export interface SwarmObserver {
  /** Peers said to be in the swarm, for a `find-sources` of peer `index`. */
  sources(index: number): readonly Source[]
  /** Peer `index` stored `leaf` (-1: the root node); it now holds `heldCount` leaves. */
  stored(index: number, leaf: number, heldCount: number, now: Millis): void
  event(index: number, event: SwarmEvent, now: Millis): void
  /** A message delivered to peer `index` (before its core sees it). */
  received(index: number, from: PeerId, message: SwarmMessage, now: Millis): void
}

/** The swarm part of a peer: a core plus the node around it. */
export class SwarmHost implements SimCore<SwarmMessage> {
  readonly index: number
  readonly #inner: Core<SwarmInput, SwarmAction>
  readonly #file: VirtualFile
  readonly #observer: SwarmObserver
  readonly #held: Bitfield
  #holdsRoot: boolean
  #now: Millis = 0
  /**
   * Blocks stored that are not the file's true block at their place, checked against the
   * file itself rather than the CID the core asked for: 0 unless verification let one through.
   */
  wrongBlocksStored = 0

  /** `seed`: the peer holds the whole file from the start (the origin). */
  constructor(index: number, inner: Core<SwarmInput, SwarmAction>, file: VirtualFile, observer: SwarmObserver, seed: boolean) {
    this.index = index
    this.#inner = inner
    this.#file = file
    this.#observer = observer
    this.#held = seed ? Bitfield.full(file.leafCount) : new Bitfield(file.leafCount)
    this.#holdsRoot = seed
  }

  get heldCount(): number {
    return this.#held.count
  }

  /** The leaves in this peer's store (not to be changed). */
  get held(): Bitfield {
    return this.#held
  }

  get complete(): boolean {
    return this.#holdsRoot && this.#held.complete
  }

  /**
   * Takes over the store of `previous`, the same machine under an earlier identity (a
   * whitewashing peer keeps its disk): before this peer's core has asked its store anything.
   */
  adoptStoreOf(previous: SwarmHost): void {
    if (this.#held.count > 0 || this.#holdsRoot) throw new Error(`peer ${this.index} already has a store of its own`)
    for (let leaf = 0; leaf < this.#file.leafCount; leaf++) if (previous.#held.has(leaf)) this.#held.add(leaf)
    this.#holdsRoot = previous.#holdsRoot
  }

  handle(now: Millis, input: SimInput<SwarmMessage> | SwarmInput): void {
    this.#now = now
    if (input.type === 'message') this.#observer.received(this.index, input.from, input.message, now)
    this.#inner.handle(now, input as SwarmInput)
  }

  poll(): AnyAction<SwarmMessage> | undefined {
    const inner = this.#inner
    const file = this.#file
    const now = this.#now
    for (;;) {
      const action = inner.poll()
      if (action === undefined) return undefined
      switch (action.type) {
        case 'send':
        case 'dial':
        case 'disconnect':
          return action
        case 'emit':
          this.#observer.event(this.index, action.event, now)
          continue
        case 'load-node':
          this.#checkRoot(action.root)
          inner.handle(now, { type: 'node-loaded', root: action.root, cid: action.cid, children: this.#holdsRoot && action.cid === file.root ? file.rootChildren : undefined })
          continue
        case 'check-leaves': {
          this.#checkRoot(action.root)
          // The core keeps and updates the bitfield it is given: it gets a copy of the store's.
          inner.handle(now, { type: 'leaves-checked', root: action.root, held: new Bitfield(file.leafCount, this.#held.bytes.slice()) })
          continue
        }
        case 'store': {
          this.#checkRoot(action.root)
          const block = action.block
          if (!verifiesAgainst(action.data, action.cid)) {
            inner.handle(now, { type: 'stored', root: action.root, block, from: action.from, outcome: 'corrupt', detail: `block ${action.cid} does not match its CID` })
            continue
          }
          if (!this.#isTrueBlock(block, action.data)) this.wrongBlocksStored++
          if (typeof block === 'string') {
            this.#holdsRoot = true
            this.#observer.stored(this.index, -1, this.#held.count, now)
            inner.handle(now, { type: 'stored', root: action.root, block, from: action.from, outcome: 'ok', children: block === file.root ? file.rootChildren : [] })
            continue
          }
          if (this.#held.add(block)) this.#observer.stored(this.index, block, this.#held.count, now)
          inner.handle(now, { type: 'stored', root: action.root, block, from: action.from, outcome: 'ok' })
          continue
        }
        case 'read': {
          const block = action.block
          const data = typeof block === 'number' ? (this.#held.has(block) ? file.leafBlocks[block] : undefined) : this.#holdsRoot && block === file.root ? file.rootBlock : undefined
          inner.handle(now, { type: 'block-read', to: action.to, root: action.root, block, data })
          continue
        }
        case 'lookup-content':
          inner.handle(now, { type: 'content', root: action.root, content: action.root === file.root && this.complete ? { leaves: file.leaves, nodes: file.nodes } : undefined })
          continue
        case 'find-sources':
          this.#checkRoot(action.root)
          inner.handle(now, { type: 'sources', root: action.root, sources: this.#observer.sources(this.index) })
          continue
      }
    }
  }

  nextDeadline(): Millis | undefined {
    return this.#inner.nextDeadline()
  }

  #isTrueBlock(block: BlockRef, data: BlockData): boolean {
    const truth = typeof block === 'number' ? this.#file.leafBlocks[block] : block === this.#file.root ? this.#file.rootBlock : undefined
    return truth !== undefined && verifiesAgainst(data, truth.hashesTo)
  }

  #checkRoot(root: ContentKey): void {
    if (root !== this.#file.root) throw new Error(`peer ${this.index} was asked about ${root}, not the simulated file ${this.#file.root}`)
  }
}
