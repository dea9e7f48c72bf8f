import assert from 'node:assert/strict'
import { test } from 'node:test'
import { Prng } from '../prng.ts'
import { asPeerId, type PeerId } from '../sans-io.ts'
import { Bitfield } from './bitfield.ts'
import { swarmConfig, type SwarmConfig } from './config.ts'
import { asContentKey, type BlockData, type ContentKey, type SwarmMessage } from './messages.ts'
import { SwarmCore, type DagChild, type SwarmAction, type SwarmEvent, type SwarmInput } from './swarm.ts'

/** Content as the tests see it: a root over `fanout`-wide inner nodes over leaves of `leafBytes`. */
interface Content {
  root: ContentKey
  nodes: Map<string, DagChild[]>
  leaves: string[]
  leafBytes: number
}

function makeContent(name: string, leafCount: number, fanout = 16, leafBytes = 1024): Content {
  const leaves = Array.from({ length: leafCount }, (_, index) => `${name}-leaf-${index}`)
  const nodes = new Map<string, DagChild[]>()
  const inner: string[] = []
  for (let start = 0; start < leafCount; start += fanout) {
    const node = `${name}-node-${inner.length}`
    nodes.set(node, leaves.slice(start, start + fanout).map((cid) => ({ cid, leaf: true })))
    inner.push(node)
  }
  const root = asContentKey(`${name}-root`)
  nodes.set(root, inner.map((cid) => ({ cid, leaf: false })))
  return { root, nodes, leaves, leafBytes }
}

/** A virtual block: its size, and whether its sender tampered with it. */
interface FakeBlock extends BlockData {
  corrupt: boolean
}

interface Behaviour {
  /** Sends blocks that fail verification. */
  corrupt?: boolean
  /** The store answers reads after this long (a slow disk), so that requests queue up. */
  readDelayMs?: number
}

class Peer {
  readonly id: PeerId
  readonly core: SwarmCore
  readonly store = new Set<string>()
  readonly events: SwarmEvent[] = []
  readonly received: Array<{ from: PeerId; block: string }> = []
  readonly behaviour: Behaviour
  busyUntil = 0
  tickAt = Infinity
  constructor(id: PeerId, config: SwarmConfig, behaviour: Behaviour) {
    this.id = id
    this.behaviour = behaviour
    this.core = new SwarmCore({ self: id, config, prng: Prng.fromSeed(id) })
  }
}

/**
 * A small deterministic network for the core: fixed latency, each sender's uplink sends one
 * block at a time at `uploadBytesPerMs`, and the node's part (store, reads, lookups) answered
 * from an in-memory set. Peers can be replaced by a scripted adversary (`impostors`).
 */
class Harness {
  now = 0
  readonly peers = new Map<PeerId, Peer>()
  readonly impostors = new Map<PeerId, (harness: Harness, from: PeerId, message: SwarmMessage) => void>()
  readonly content: Content
  readonly latencyMs = 5
  readonly uploadBytesPerMs = 1024
  /** Ticks after which a core still wanted a tick at once: a driver would spin. */
  stuckTicks = 0
  /** The leaves each peer sent, in order. */
  readonly seedUploads = new Map<PeerId, string[]>()
  readonly #events: Array<{ at: number; sequence: number; run: () => void }> = []
  #sequence = 0
  readonly #connections = new Set<string>()

  constructor(content: Content) {
    this.content = content
  }

  add(name: string, options: { seed?: boolean; config?: Partial<SwarmConfig>; behaviour?: Behaviour; hold?: (cid: string) => boolean } = {}): Peer {
    const peer = new Peer(asPeerId(name), swarmConfig({ progressIntervalMs: 0, haveBatchMs: 0, ...options.config }), options.behaviour ?? {})
    this.peers.set(peer.id, peer)
    if (options.seed === true) {
      for (const cid of this.content.nodes.keys()) peer.store.add(cid)
      for (const cid of this.content.leaves) peer.store.add(cid)
    }
    if (options.hold !== undefined) {
      for (const cid of [...this.content.nodes.keys(), ...this.content.leaves]) if (options.hold(cid)) peer.store.add(cid)
    }
    return peer
  }

  connect(a: PeerId, b: PeerId): void {
    const key = [a, b].sort().join('|')
    if (this.#connections.has(key)) return
    this.#connections.add(key)
    this.#deliver(a, { type: 'peer-connected', peer: b, direction: 'outbound', addresses: [] })
    this.#deliver(b, { type: 'peer-connected', peer: a, direction: 'inbound', addresses: [] })
  }

  disconnect(a: PeerId, b: PeerId): void {
    const key = [a, b].sort().join('|')
    if (!this.#connections.delete(key)) return
    this.#deliver(a, { type: 'peer-disconnected', peer: b })
    this.#deliver(b, { type: 'peer-disconnected', peer: a })
  }

  connected(a: PeerId, b: PeerId): boolean {
    return this.#connections.has([a, b].sort().join('|'))
  }

  input(id: PeerId, input: SwarmInput): void {
    this.#deliver(id, input)
  }

  /** Sends a message as `from` (an impostor) to `to`. */
  sendAs(from: PeerId, to: PeerId, message: SwarmMessage): void {
    this.#at(this.now + this.latencyMs, () => this.#deliver(to, { type: 'message', from, message }))
  }

  run(untilMs: number): void {
    while (this.#events.length > 0) {
      let next = 0
      for (let index = 1; index < this.#events.length; index++) {
        const event = this.#events[index]!
        const best = this.#events[next]!
        if (event.at < best.at || (event.at === best.at && event.sequence < best.sequence)) next = index
      }
      const event = this.#events[next]!
      if (event.at > untilMs) break
      this.#events.splice(next, 1)
      this.now = event.at
      event.run()
    }
    this.now = Math.max(this.now, untilMs)
  }

  #at(at: number, run: () => void): void {
    this.#events.push({ at, sequence: this.#sequence++, run })
  }

  #deliver(id: PeerId, input: SwarmInput): void {
    const peer = this.peers.get(id)
    if (peer === undefined) {
      const impostor = this.impostors.get(id)
      if (impostor !== undefined && input.type === 'message') impostor(this, input.from, input.message)
      return
    }
    peer.core.handle(this.now, input)
    for (let action = peer.core.poll(); action !== undefined; action = peer.core.poll()) this.#execute(peer, action)
    const deadline = peer.core.nextDeadline()
    if (input.type === 'tick' && deadline !== undefined && deadline <= this.now) this.stuckTicks++
    if (deadline === undefined || deadline >= peer.tickAt) return
    const at = Math.max(deadline, this.now + 1)
    peer.tickAt = at
    this.#at(at, () => {
      if (peer.tickAt !== at) return
      peer.tickAt = Infinity
      this.#deliver(id, { type: 'tick' })
    })
  }

  #execute(peer: Peer, action: SwarmAction): void {
    const content = this.content
    const root = content.root
    switch (action.type) {
      case 'send': {
        if (!this.connected(peer.id, action.to)) return
        const message = action.message
        if (message.type === 'block' && typeof message.block === 'number') {
          const uploads = this.seedUploads.get(peer.id) ?? []
          uploads.push(content.leaves[message.block]!)
          this.seedUploads.set(peer.id, uploads)
        }
        let departAt = this.now
        if (message.type === 'block') {
          const start = Math.max(this.now, peer.busyUntil)
          peer.busyUntil = start + message.data.byteLength / this.uploadBytesPerMs
          departAt = peer.busyUntil
        }
        this.#at(departAt + this.latencyMs, () => {
          if (this.connected(peer.id, action.to)) this.#deliver(action.to, { type: 'message', from: peer.id, message })
        })
        return
      }
      case 'dial':
        return this.#at(this.now + 2 * this.latencyMs, () => {
          if (this.peers.has(action.peer) || this.impostors.has(action.peer)) this.connect(peer.id, action.peer)
          else this.#deliver(peer.id, { type: 'dial-failed', peer: action.peer, reason: 'no such peer' })
        })
      case 'disconnect':
        return this.disconnect(peer.id, action.peer)
      case 'load-node':
        return this.#deliver(peer.id, { type: 'node-loaded', root, cid: action.cid, children: peer.store.has(action.cid) ? content.nodes.get(action.cid) : undefined })
      case 'check-leaves': {
        const held = new Bitfield(action.leaves.length)
        action.leaves.forEach((cid, index) => peer.store.has(cid) && held.add(index))
        return this.#deliver(peer.id, { type: 'leaves-checked', root, held })
      }
      case 'store': {
        const block = action.data as FakeBlock
        if (block.corrupt) return this.#deliver(peer.id, { type: 'stored', root, block: action.block, from: action.from, outcome: 'corrupt' })
        peer.store.add(action.cid)
        peer.received.push({ from: action.from, block: action.cid })
        return this.#deliver(peer.id, { type: 'stored', root, block: action.block, from: action.from, outcome: 'ok', children: content.nodes.get(action.cid) })
      }
      case 'read': {
        const data: FakeBlock | undefined = peer.store.has(action.cid) ? { byteLength: content.nodes.has(action.cid) ? 100 : content.leafBytes, corrupt: peer.behaviour.corrupt === true } : undefined
        const answer = () => this.#deliver(peer.id, { type: 'block-read', to: action.to, root, block: action.block, data })
        if (peer.behaviour.readDelayMs === undefined) return answer()
        return this.#at(this.now + peer.behaviour.readDelayMs, answer)
      }
      case 'lookup-content': {
        const complete = [...content.nodes.keys(), ...content.leaves].every((cid) => peer.store.has(cid))
        return this.#deliver(peer.id, { type: 'content', root: action.root, content: complete ? { leaves: content.leaves, nodes: [...content.nodes.keys()] } : undefined })
      }
      case 'find-sources': {
        const sources = [...this.peers.keys(), ...this.impostors.keys()].filter((id) => id !== peer.id).map((id) => ({ peer: id, addresses: [] }))
        return this.#deliver(peer.id, { type: 'sources', root: action.root, sources })
      }
      case 'emit':
        peer.events.push(action.event)
        return
    }
  }
}

function completed(peer: Peer): boolean {
  return peer.events.some((event) => event.type === 'complete')
}

function holdsAll(harness: Harness, peer: Peer): boolean {
  return [...harness.content.nodes.keys(), ...harness.content.leaves].every((cid) => peer.store.has(cid))
}

test('a download gets the inner nodes first, then every leaf once, from a seed it was told of', () => {
  const harness = new Harness(makeContent('a', 40))
  harness.add('seed', { seed: true })
  const leecher = harness.add('leecher')
  harness.input(leecher.id, { type: 'fetch', root: harness.content.root, rootIsLeaf: false, order: 'rarest' })
  harness.run(120_000)
  assert.ok(completed(leecher), 'the download completes')
  assert.ok(holdsAll(harness, leecher))
  const received = leecher.received.map((entry) => entry.block)
  assert.equal(new Set(received).size, received.length, 'no block is received twice')
  const firstLeaf = received.findIndex((cid) => cid.includes('leaf'))
  const lastNode = received.findLastIndex((cid) => cid.includes('node') || cid.includes('root'))
  assert.ok(lastNode < firstLeaf, 'every inner node arrives before any leaf')
  const complete = leecher.events.find((event) => event.type === 'complete')!
  assert.equal(complete.type === 'complete' && complete.progress.heldCount, 40)
})

test('content whose every block is an inner node (a UnixFS v0 file: dag-pb leaves, no raw ones) is fetched from a seed that holds it', () => {
  const dataNodes = Array.from({ length: 6 }, (_, index) => `v0-data-${index}`)
  const root = asContentKey('v0-root')
  const nodes = new Map<string, DagChild[]>([[root, dataNodes.map((cid) => ({ cid, leaf: false }))], ...dataNodes.map((cid): [string, DagChild[]] => [cid, []])])
  const harness = new Harness({ root, nodes, leaves: [], leafBytes: 1024 })
  const seed = harness.add('seed', { seed: true })
  const leecher = harness.add('leecher')
  harness.input(leecher.id, { type: 'fetch', root, rootIsLeaf: false, order: 'rarest' })
  harness.run(60_000)
  assert.ok(completed(leecher), 'the download completes: the seed said it holds the DAG, though it knows no leaves')
  assert.ok(holdsAll(harness, leecher))
  // The seed gone, the leecher, complete, serves it in turn: it says so too.
  harness.disconnect(seed.id, leecher.id)
  harness.peers.delete(seed.id)
  const second = harness.add('second')
  harness.input(second.id, { type: 'fetch', root, rootIsLeaf: false, order: 'rarest' })
  harness.run(120_000)
  assert.ok(completed(second))
  assert.ok(holdsAll(harness, second))
  assert.ok(second.received.every((entry) => entry.from === leecher.id))
})

test('many leechers share the load: the seed uploads far less than everyone downloads', () => {
  const harness = new Harness(makeContent('b', 64))
  const seed = harness.add('seed', { seed: true })
  const leechers = Array.from({ length: 8 }, (_, index) => harness.add(`leecher-${index}`))
  for (const leecher of leechers) harness.input(leecher.id, { type: 'fetch', root: harness.content.root, rootIsLeaf: false, order: 'rarest' })
  harness.run(600_000)
  for (const leecher of leechers) assert.ok(completed(leecher), `${leecher.id} completes`)
  const fromSeed = leechers.reduce((sum, leecher) => sum + leecher.received.filter((entry) => entry.from === seed.id && entry.block.includes('leaf')).length, 0)
  assert.ok(fromSeed < 64 * 8 * 0.5, `the seed sent ${fromSeed} of ${64 * 8} leaves`)
  assert.ok(seed.core.counters.blocksSent >= 64, 'the seed sent each leaf at least once')
  // Tit-for-tat: at no point does the seed serve more than its slots (4 regular + 1 optimistic).
  const unchoked = leechers.filter((leecher) => seed.core.isUnchoking(harness.content.root, leecher.id)).length
  assert.ok(unchoked <= 5)
  assert.equal(harness.stuckTicks, 0, 'no core asks for a tick it was just given')
})

test('an initial seed sends every leaf once before it sends any leaf twice, or nearly', () => {
  const uploadsUntilAllSent = (initialSeeding: boolean): number => {
    const harness = new Harness(makeContent('s', 64))
    const seed = harness.add('seed', { seed: true, config: { initialSeeding } })
    const leechers = Array.from({ length: 8 }, (_, index) => harness.add(`leecher-${index}`))
    for (const leecher of leechers) harness.input(leecher.id, { type: 'fetch', root: harness.content.root, rootIsLeaf: false, order: 'rarest' })
    harness.run(600_000)
    for (const leecher of leechers) assert.ok(completed(leecher), `${leecher.id} completes`)
    assert.equal(harness.stuckTicks, 0)
    // The seed's leaf uploads in the order they were stored by the leechers (one uplink, so in the order sent).
    const fromSeed = leechers.flatMap((leecher) => leecher.received.filter((entry) => entry.from === seed.id && entry.block.includes('leaf')))
    const sent = new Set<string>()
    let uploads = 0
    for (const entry of harness.seedUploads.get(seed.id) ?? []) {
      uploads++
      sent.add(entry)
      if (sent.size === 64) return uploads
    }
    assert.fail(`the seed sent ${sent.size} distinct leaves of 64 (${fromSeed.length} stored)`)
  }
  const initial = uploadsUntilAllSent(true)
  const plain = uploadsUntilAllSent(false)
  // Endgame asks the seed too for the last leaves of each download: a few copies go early.
  assert.ok(initial <= 64 * 1.3, `${initial} uploads before every leaf was out`)
  assert.ok(initial * 1.5 < plain, `${initial} uploads, against ${plain} for a plain seed`)
})

test('haves skip the leaves a peer holds; a bitfield tells it when the sender completes', () => {
  const content = makeContent('k', 16)
  const harness = new Harness(content)
  harness.add('seed', { seed: true })
  const watcher = asPeerId('watcher')
  const heard: SwarmMessage[] = []
  const holds = Bitfield.full(16)
  for (let index = 0; index < 16; index++) if (index % 4 === 0) holds.bytes[index >>> 3]! &= ~(0x80 >>> (index & 7))
  // Rebuild so that its count matches its bits.
  const watcherBits = new Bitfield(16, holds.bytes.slice())
  harness.impostors.set(watcher, (h, from, message) => {
    heard.push(message)
    if (message.type === 'bitfield') h.sendAs(watcher, from, { type: 'bitfield', root: content.root, leafCount: 16, bits: watcherBits.bytes })
    if (message.type === 'request') h.sendAs(watcher, from, { type: 'reject', root: content.root, block: message.block, reason: 'choked' })
  })
  const leecher = harness.add('leecher', { hold: (cid) => content.nodes.has(cid) })
  harness.connect(leecher.id, watcher)
  harness.input(leecher.id, { type: 'fetch', root: content.root, rootIsLeaf: false, order: 'rarest' })
  harness.run(120_000)
  assert.ok(completed(leecher))
  const announced = heard.flatMap((message) => (message.type === 'have' ? message.leaves : []))
  assert.ok(announced.length > 0, 'the watcher heard some haves')
  assert.ok(announced.every((leaf) => !watcherBits.has(leaf)), `haves of held leaves: ${announced.filter((leaf) => watcherBits.has(leaf)).join(', ')}`)
  const last = heard.findLast((message) => message.type === 'bitfield')
  assert.ok(last?.type === 'bitfield' && new Bitfield(16, last.bits).complete, 'a complete bitfield at the end')
})

test('a download resumes from the blocks already stored and asks only for the rest', () => {
  const content = makeContent('c', 32)
  const harness = new Harness(content)
  harness.add('seed', { seed: true })
  const held = new Set(content.leaves.slice(0, 20))
  const leecher = harness.add('leecher', { hold: (cid) => held.has(cid) || content.nodes.has(cid) })
  harness.input(leecher.id, { type: 'fetch', root: content.root, rootIsLeaf: false, order: 'rarest' })
  harness.run(120_000)
  assert.ok(completed(leecher))
  assert.equal(leecher.received.length, 12, 'only the 12 missing leaves were fetched')
  assert.ok(leecher.received.every((entry) => !held.has(entry.block)))
})

test('a peer that sends bad blocks is banned and the download completes from honest peers', () => {
  const harness = new Harness(makeContent('d', 32))
  const liar = harness.add('liar', { seed: true, behaviour: { corrupt: true } })
  harness.add('honest', { seed: true })
  const leecher = harness.add('leecher')
  harness.input(leecher.id, { type: 'fetch', root: harness.content.root, rootIsLeaf: false, order: 'rarest' })
  harness.run(300_000)
  assert.ok(completed(leecher))
  assert.ok(leecher.core.counters.badBlocks >= 1)
  assert.ok(leecher.core.counters.peersBanned >= 1)
  assert.ok(!harness.connected(leecher.id, liar.id), 'the liar was disconnected')
  assert.ok(leecher.received.every((entry) => entry.from !== liar.id), 'nothing from the liar was stored')
  // A banned peer that comes back is turned away.
  harness.connect(leecher.id, liar.id)
  assert.ok(!harness.connected(leecher.id, liar.id))
})

test('a peer that advertises everything and sends nothing is dropped after timeouts; the download completes', () => {
  const content = makeContent('e', 24)
  const harness = new Harness(content)
  const ghost = asPeerId('ghost')
  harness.impostors.set(ghost, (h, from, message) => {
    if (message.type === 'bitfield') {
      h.sendAs(ghost, from, { type: 'bitfield', root: content.root, leafCount: content.leaves.length, bits: Bitfield.full(content.leaves.length).bytes })
      h.sendAs(ghost, from, { type: 'unchoke', root: content.root })
    }
  })
  const leecher = harness.add('leecher', { hold: (cid) => content.nodes.has(cid), config: { requestTimeoutMs: 2_000, sourcesRefreshMs: 5_000 } })
  harness.input(leecher.id, { type: 'fetch', root: content.root, rootIsLeaf: false, order: 'rarest' })
  harness.run(20_000)
  assert.ok(leecher.core.counters.requestTimeouts >= 1, 'requests to the ghost timed out')
  assert.equal(harness.stuckTicks, 0, 'a request outstanding past a shorter timeout does not make the core spin')
  assert.equal(leecher.core.counters.peersDroppedUnresponsive, 1)
  // A seed appears; the next search for sources finds it.
  harness.add('seed', { seed: true })
  harness.run(300_000)
  assert.ok(completed(leecher))
  assert.ok(leecher.events.some((event) => event.type === 'misbehaved' && event.peer === ghost && event.reason === 'unresponsive'))
})

test('requests for absent blocks are rejected, and a request flood gets the flooder disconnected', () => {
  const content = makeContent('f', 32, 2)
  const harness = new Harness(content)
  const seed = harness.add('seed', { seed: true, config: { queuedRequestsPerPeerMax: 4, overloadedRequestsMax: 3, readsPerPeerMax: 1 }, behaviour: { readDelayMs: 1_000 } })
  const flooder = asPeerId('flooder')
  const replies: SwarmMessage[] = []
  harness.impostors.set(flooder, (_h, _from, message) => replies.push(message))
  harness.connect(flooder, seed.id)
  harness.sendAs(flooder, seed.id, { type: 'bitfield', root: content.root, leafCount: 0, bits: new Uint8Array(0) })
  harness.run(100)
  assert.ok(replies.some((message) => message.type === 'bitfield' && message.leafCount === 32), 'the seed answers with its bitfield')
  harness.sendAs(flooder, seed.id, { type: 'request', root: content.root, block: 'not-part-of-it' })
  harness.sendAs(flooder, seed.id, { type: 'request', root: content.root, block: 99 })
  harness.run(200)
  assert.equal(replies.filter((message) => message.type === 'reject' && message.reason === 'absent').length, 2)
  // Choked: requests for leaves are refused as such.
  harness.sendAs(flooder, seed.id, { type: 'request', root: content.root, block: 0 })
  harness.run(300)
  assert.ok(replies.some((message) => message.type === 'reject' && message.reason === 'choked'))
  // Inner nodes are served whatever the choke state: flood them (17 distinct ones; a repeat is ignored).
  const nodes = [...content.nodes.keys()]
  for (let index = 0; index < 40; index++) harness.sendAs(flooder, seed.id, { type: 'request', root: content.root, block: nodes[index % nodes.length]! })
  harness.run(400)
  assert.ok(seed.core.counters.overloadedRequests >= 3)
  assert.ok(!harness.connected(flooder, seed.id), 'the flooder was disconnected')
  assert.ok(seed.events.some((event) => event.type === 'misbehaved' && event.reason === 'request-flood'))
})

test('in-order mode fetches leaves in file order from a single seed', () => {
  const content = makeContent('g', 30)
  const harness = new Harness(content)
  harness.add('seed', { seed: true })
  const leecher = harness.add('leecher', { hold: (cid) => content.nodes.has(cid) })
  harness.input(leecher.id, { type: 'fetch', root: content.root, rootIsLeaf: false, order: 'in-order' })
  harness.run(120_000)
  assert.ok(completed(leecher))
  assert.deepEqual(leecher.received.map((entry) => entry.block), content.leaves)
})

test('endgame asks a second peer for the last blocks and cancels the loser', () => {
  const content = makeContent('h', 40)
  const harness = new Harness(content)
  harness.add('seed-1', { seed: true })
  harness.add('seed-2', { seed: true })
  harness.add('seed-3', { seed: true })
  const leecher = harness.add('leecher', { hold: (cid) => content.nodes.has(cid), config: { requestsPerPeerMin: 4 } })
  harness.input(leecher.id, { type: 'fetch', root: content.root, rootIsLeaf: false, order: 'rarest' })
  harness.run(120_000)
  assert.ok(completed(leecher))
  assert.ok(leecher.core.counters.endgameRequests > 0, 'endgame requests were sent')
  assert.ok(leecher.core.counters.cancelsSent > 0, 'duplicates were cancelled')
  assert.equal(new Set(leecher.received.map((entry) => entry.block)).size, leecher.received.length, 'each block was stored once')
})

test('an upload limit caps the bytes a seed sends per second', () => {
  const content = makeContent('i', 64, 16, 1024)
  const harness = new Harness(content)
  const seed = harness.add('seed', { seed: true, config: { uploadBytesPerSecondMax: 8 * 1024, blockBytesTypical: 1024 } })
  const leecher = harness.add('leecher', { hold: (cid) => content.nodes.has(cid) })
  harness.input(leecher.id, { type: 'fetch', root: content.root, rootIsLeaf: false, order: 'rarest' })
  harness.run(4_000)
  // At 8 KiB/s plus one second's burst, 4 s allow at most 40 blocks of 1 KiB.
  assert.ok(seed.core.counters.blocksSent <= 40, `${seed.core.counters.blocksSent} blocks sent`)
  assert.ok(seed.core.counters.blocksSent >= 24, `${seed.core.counters.blocksSent} blocks sent`)
  harness.run(60_000)
  assert.ok(completed(leecher))
})

test('a fetch beyond fetchesMax fails with a clear reason; a fetch of held content completes at once', () => {
  const content = makeContent('j', 4)
  const harness = new Harness(content)
  const peer = harness.add('peer', { seed: true, config: { fetchesMax: 1 } })
  harness.input(peer.id, { type: 'fetch', root: content.root, rootIsLeaf: false, order: 'rarest' })
  assert.ok(completed(peer), 'held content completes without any peer')
  harness.input(peer.id, { type: 'fetch', root: asContentKey('other-1'), rootIsLeaf: true, order: 'rarest' })
  harness.input(peer.id, { type: 'fetch', root: asContentKey('other-2'), rootIsLeaf: true, order: 'rarest' })
  const failed = peer.events.find((event) => event.type === 'failed')
  assert.ok(failed?.type === 'failed' && failed.reason === 'too-many-sessions' && failed.root === 'other-2')
})

test('a finished download left with no peers is dropped when idle, and a peer asking later is served from the store', () => {
  const content = makeContent('k', 8)
  const harness = new Harness(content)
  const seed = harness.add('seed', { seed: true })
  const leecher = harness.add('leecher')
  harness.input(leecher.id, { type: 'fetch', root: content.root, rootIsLeaf: false, order: 'rarest' })
  harness.run(60_000)
  assert.ok(completed(leecher))
  harness.disconnect(leecher.id, seed.id)
  harness.run(harness.now + swarmConfig({}).idleSessionMs + 10_000)
  assert.equal(leecher.core.sessionCount, 0, 'the finished download is not kept for ever')
  const late = harness.add('late')
  harness.connect(late.id, leecher.id)
  harness.input(late.id, { type: 'fetch', root: content.root, rootIsLeaf: false, order: 'rarest' })
  harness.run(harness.now + 60_000)
  assert.ok(completed(late) && holdsAll(harness, late), 'the late peer gets the content from the former leecher')
})

test('an initial seed offers a stalled peer the leaves that look spread because the peers holding them keep them', () => {
  const content = makeContent('k', 16)
  const root = content.root
  const harness = new Harness(content)
  const seed = harness.add('seed', { seed: true, config: { initialSeeding: true } })
  // A first downloader takes every leaf from the seed and leaves: each has been sent once.
  const first = harness.add('first')
  harness.input(first.id, { type: 'fetch', root, rootIsLeaf: false, order: 'rarest' })
  harness.run(60_000)
  assert.ok(completed(first))
  harness.disconnect(first.id, seed.id)
  harness.peers.delete(first.id)
  // Three peers tell the seed they hold leaves 0-9 and serve nobody: to the seed those leaves have spread.
  const hoarded = new Bitfield(16)
  for (let leaf = 0; leaf < 10; leaf++) hoarded.add(leaf)
  for (const hoarder of ['hoarder-0', 'hoarder-1', 'hoarder-2'].map(asPeerId)) {
    harness.impostors.set(hoarder, () => {})
    harness.connect(hoarder, seed.id)
    harness.sendAs(hoarder, seed.id, { type: 'bitfield', root, leafCount: 16, bits: hoarded.bytes })
  }
  harness.run(61_000)
  const late = harness.add('late', { hold: (cid) => content.nodes.has(cid) })
  harness.input(late.id, { type: 'fetch', root, rootIsLeaf: false, order: 'rarest' })
  // It gets the leaves that have not spread, then nothing: the seed offers it no more.
  harness.run(65_000)
  const heldAt = (leaf: number) => late.store.has(content.leaves[leaf]!)
  assert.deepEqual(content.leaves.map((_cid, leaf) => heldAt(leaf)), content.leaves.map((_cid, leaf) => leaf >= 10), 'leaves 10-15 only')
  assert.ok(!seed.core.isUnchoking(root, late.id) || late.received.length === 6 + content.nodes.size, 'nothing more on its way')
  // Once it has announced nothing new for 5 s, not interested in the seed, the seed offers it the rest.
  harness.run(75_000)
  assert.ok(completed(late), `it completes from the seed; it holds ${content.leaves.filter((_cid, leaf) => heldAt(leaf)).length} of 16`)
  assert.ok(late.received.filter((entry) => entry.from === seed.id).length >= 16)
  assert.equal(harness.stuckTicks, 0)
})
