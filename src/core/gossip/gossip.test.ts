import assert from 'node:assert/strict'
import { test } from 'node:test'
import { Prng } from '../prng.ts'
import { asPeerId, type Millis, type PeerId } from '../sans-io.ts'
import { DEFAULT_GOSSIP_PARAMS, type GossipParams } from './config.ts'
import { GossipCore, type GossipAction, type GossipEvent } from './gossip.ts'
import { type GossipControl, type GossipMessage, type GossipRpc, type MessageId, MESHSUB_PROTOCOL_V10, MESHSUB_PROTOCOL_V11 } from './messages.ts'

const TOPIC = 'news'
const self = asPeerId('self')

function idOf(message: GossipMessage): MessageId | undefined {
  if (message.from === undefined || message.seqno === undefined) return undefined
  return `${message.from}/${new DataView(message.seqno.buffer, message.seqno.byteOffset).getBigUint64(0)}` as MessageId
}

let seqno = 0n
function nextSeqno(): Uint8Array {
  const bytes = new Uint8Array(8)
  new DataView(bytes.buffer).setBigUint64(0, ++seqno)
  return bytes
}
function message(from: string, options: { bytes?: number; topic?: string } = {}): GossipMessage {
  return { topic: options.topic ?? TOPIC, data: new Uint8Array(options.bytes ?? 10), from: asPeerId(from), seqno: nextSeqno(), signature: new Uint8Array(64) }
}

function rpc(parts: { subscribe?: string[]; messages?: GossipMessage[]; control?: Partial<GossipControl> }): GossipRpc {
  const result: GossipRpc = { subscriptions: (parts.subscribe ?? []).map((topic) => ({ topic, subscribe: true })), messages: parts.messages ?? [] }
  if (parts.control !== undefined) result.control = { ihave: [], iwant: [], graft: [], prune: [], idontwant: [], ...parts.control }
  return result
}

/** A core under test, fed by hand, with every action it emits kept. */
class Harness {
  readonly core: GossipCore
  now: Millis = 0
  actions: GossipAction[] = []

  constructor(params: Partial<GossipParams> = {}) {
    this.core = new GossipCore({ ...DEFAULT_GOSSIP_PARAMS, ...params, self, messageIdOf: idOf }, Prng.fromSeed(1))
  }

  input(input: Parameters<GossipCore['handle']>[1]): GossipAction[] {
    this.core.handle(this.now, input)
    const emitted: GossipAction[] = []
    for (let action = this.core.poll(); action !== undefined; action = this.core.poll()) emitted.push(action)
    this.actions.push(...emitted)
    return emitted
  }

  /** Connects peers that subscribe to TOPIC. */
  connect(names: string[], options: { outbound?: boolean; protocol?: string; subscribe?: boolean } = {}): PeerId[] {
    return names.map((name) => {
      const peer = asPeerId(name)
      this.input({ type: 'peer-connected', peer, direction: options.outbound === false ? 'inbound' : 'outbound', addresses: [], protocol: options.protocol })
      if (options.subscribe !== false) this.input({ type: 'message', from: peer, message: rpc({ subscribe: [TOPIC] }) })
      return peer
    })
  }

  from(peer: PeerId, message: GossipRpc): GossipAction[] {
    return this.input({ type: 'message', from: peer, message })
  }

  /** Advances the clock to the next heartbeat and ticks. */
  heartbeat(): GossipAction[] {
    this.now = this.core.nextDeadline()!
    return this.input({ type: 'tick' })
  }

  /** Receives a message and accepts it at once. */
  deliver(from: PeerId, gossipMessage: GossipMessage): GossipAction[] {
    const validate = this.from(from, rpc({ messages: [gossipMessage] })).find((action) => action.type === 'validate')
    assert.ok(validate?.type === 'validate', 'a new message goes to validation')
    return this.input({ type: 'validation', id: validate.id, result: 'accept' })
  }
}

function sends(actions: GossipAction[]): Array<{ to: PeerId; message: GossipRpc }> {
  return actions.flatMap((action) => (action.type === 'send' ? [{ to: action.to, message: action.message }] : []))
}

function controlTo(actions: GossipAction[], peer: PeerId): GossipControl | undefined {
  return sends(actions).find((send) => send.to === peer && send.message.control !== undefined)?.message.control
}

function events(actions: GossipAction[]): GossipEvent[] {
  return actions.flatMap((action) => (action.type === 'emit' ? [action.event] : []))
}

function names(count: number, prefix = 'p'): string[] {
  return Array.from({ length: count }, (_, index) => `${prefix}${index}`)
}

test('subscribing grafts D subscribed peers and announces the subscription to every peer', () => {
  const h = new Harness()
  h.connect(names(10))
  h.connect(['quiet'], { subscribe: false })
  const actions = h.input({ type: 'subscribe', topic: TOPIC })
  const grafted = sends(actions).filter((send) => send.message.control?.graft.includes(TOPIC))
  assert.equal(grafted.length, 6)
  assert.equal(h.core.meshOf(TOPIC).length, 6)
  const announced = sends(actions).filter((send) => send.message.subscriptions.some((change) => change.topic === TOPIC && change.subscribe))
  assert.equal(announced.length, 11, 'every connected peer, subscribed or not, hears of it')
  assert.ok(!h.core.meshOf(TOPIC).includes(asPeerId('quiet')))
})

test('a new message is validated, then delivered and forwarded to the mesh except its sender and source', () => {
  const h = new Harness()
  h.connect(names(8))
  h.input({ type: 'subscribe', topic: TOPIC })
  const mesh = h.core.meshOf(TOPIC)
  const sender = mesh[0]!
  const received = message(mesh[1]!)
  const actions = h.deliver(sender, received)
  const forwardedTo = sends(actions).filter((send) => send.message.messages.length === 1).map((send) => send.to).sort()
  assert.deepEqual(forwardedTo, mesh.filter((peer) => peer !== sender && peer !== mesh[1]).sort())
  const delivered = events(actions).filter((event) => event.type === 'message')
  assert.equal(delivered.length, 1)
  // A second copy is a duplicate: neither validated nor forwarded again.
  const again = h.from(mesh[2]!, rpc({ messages: [received] }))
  assert.equal(again.filter((action) => action.type === 'validate' || action.type === 'send').length, 0)
  assert.equal(h.core.counters.messagesDuplicate, 1)
})

test('rejected messages lower their sender\'s score until its RPCs are ignored (graylist)', () => {
  const h = new Harness()
  const [spammer] = h.connect(['spammer'])
  h.input({ type: 'subscribe', topic: TOPIC })
  for (let index = 0; index < 12; index++) {
    const validate = h.from(spammer!, rpc({ messages: [message('spammer')] })).find((action) => action.type === 'validate')
    if (validate?.type !== 'validate') break
    h.input({ type: 'validation', id: validate.id, result: 'reject' })
  }
  assert.ok(h.core.scoreOf(spammer!) < -80, `score ${h.core.scoreOf(spammer!)}`)
  const before = h.core.counters.rpcsGraylisted
  assert.equal(h.from(spammer!, rpc({ messages: [message('spammer')] })).length, 0)
  assert.equal(h.core.counters.rpcsGraylisted, before + 1)
  assert.equal(h.core.counters.messagesRejected, 9, 'the ninth takes P4 to -81, past the graylist threshold')
  // The penalty decays: after enough heartbeats the peer is heard again.
  for (let index = 0; index < 400; index++) h.heartbeat()
  assert.ok(h.core.scoreOf(spammer!) > -80)
})

test('messages the core can judge alone are invalid without validation: oversize, unsigned under StrictSign', () => {
  const h = new Harness({ messageDataBytesMax: 100 })
  const [peer] = h.connect(['a'])
  h.input({ type: 'subscribe', topic: TOPIC })
  const oversize = h.from(peer!, rpc({ messages: [message('a', { bytes: 101 })] }))
  const unsigned = h.from(peer!, rpc({ messages: [{ topic: TOPIC, data: new Uint8Array(1) }] }))
  assert.equal([...oversize, ...unsigned].filter((action) => action.type === 'validate').length, 0)
  assert.equal(h.core.counters.messagesInvalid, 2)
  assert.ok(h.core.scoreOf(peer!) < 0)
  // Messages of topics we do not subscribe to are not ours to judge.
  h.from(peer!, rpc({ messages: [message('a', { topic: 'other' })] }))
  assert.equal(h.core.counters.messagesNotSubscribed, 1)
})

test('a GRAFT in backoff is refused with a PRUNE and penalised; a GRAFT for an unknown topic is ignored', () => {
  const h = new Harness()
  const [peer] = h.connect(['a'])
  h.input({ type: 'subscribe', topic: TOPIC })
  assert.deepEqual(h.core.meshOf(TOPIC), [peer])
  h.from(peer!, rpc({ control: { prune: [{ topic: TOPIC, peers: [], backoffSeconds: 60 }] } }))
  assert.deepEqual(h.core.meshOf(TOPIC), [])
  const refusal = h.from(peer!, rpc({ control: { graft: [TOPIC] } }))
  assert.equal(controlTo(refusal, peer!)?.prune[0]?.topic, TOPIC)
  assert.deepEqual(h.core.meshOf(TOPIC), [])
  assert.equal(h.core.counters.penalties, 2, 'a GRAFT right after the PRUNE counts double')
  assert.equal(h.from(peer!, rpc({ control: { graft: ['unknown'] } })).length, 0)
  assert.equal(h.core.counters.graftIgnored, 1)
  // Once the backoff (and its slack) is over, the mesh takes the peer back.
  for (let index = 0; index < 63; index++) h.heartbeat()
  assert.deepEqual(h.core.meshOf(TOPIC), [peer])
})

test('PRUNE carries a backoff and peer exchange to v1.1 peers, nothing of the kind to v1.0 peers', () => {
  const h = new Harness({ D: 2, Dlo: 2, Dhi: 2, Dscore: 1, Dout: 0 })
  const [old] = h.connect(['old'], { protocol: MESHSUB_PROTOCOL_V10 })
  const [recent] = h.connect(['recent'], { protocol: MESHSUB_PROTOCOL_V11 })
  h.input({ type: 'subscribe', topic: TOPIC })
  assert.equal(h.core.meshOf(TOPIC).length, 2)
  // Past Dhi, an inbound peer's GRAFT is refused, with peers offered instead.
  const [late] = h.connect(['late'], { protocol: MESHSUB_PROTOCOL_V11, outbound: false })
  const refusal = controlTo(h.from(late!, rpc({ control: { graft: [TOPIC] } })), late!)?.prune[0]
  assert.equal(refusal?.backoffSeconds, 60)
  assert.deepEqual(refusal?.peers.map(({ peer }) => peer).sort(), [old, recent].sort())
  const leaving = h.input({ type: 'unsubscribe', topic: TOPIC })
  assert.deepEqual(controlTo(leaving, old!)?.prune, [{ topic: TOPIC, peers: [] }])
  assert.equal(controlTo(leaving, recent!)?.prune[0]?.backoffSeconds, 10, 'the unsubscribe backoff')
})

test('IHAVE of unseen messages is answered with IWANT; a promise not kept is penalised', () => {
  const h = new Harness()
  const [peer] = h.connect(['a'])
  h.input({ type: 'subscribe', topic: TOPIC })
  const ids = ['x1', 'x2'] as MessageId[]
  const iwant = controlTo(h.from(peer!, rpc({ control: { ihave: [{ topic: TOPIC, messageIds: ids }] } })), peer!)?.iwant
  assert.deepEqual(iwant?.sort(), ids)
  for (let index = 0; index < 4; index++) h.heartbeat()
  assert.equal(h.core.counters.brokenPromises, 1)
  // IHAVE beyond ihavePerHeartbeatMax in one heartbeat is ignored.
  for (let index = 0; index < 12; index++) h.from(peer!, rpc({ control: { ihave: [{ topic: TOPIC, messageIds: [`y${index}` as MessageId] }] } }))
  assert.ok(h.core.counters.ihaveIgnored >= 2)
})

test('IWANT is served gossipRetransmission times per peer and message; asking more is refused and penalised', () => {
  const h = new Harness()
  const [a, b] = h.connect(['a', 'b'])
  h.input({ type: 'subscribe', topic: TOPIC })
  const cached = message('b')
  h.deliver(b!, cached)
  let served = 0
  for (let index = 0; index < 5; index++) {
    served += sends(h.from(a!, rpc({ control: { iwant: [idOf(cached)!] } }))).filter((send) => send.message.messages.length > 0).length
  }
  assert.equal(served, 3)
  assert.equal(h.core.counters.iwantRefused, 2)
  assert.equal(h.core.counters.penalties, 2)
})

test('IDONTWANT: a large message is announced to v1.2 mesh peers on arrival, and a peer that said it is not sent the message', () => {
  const h = new Harness()
  const v12 = h.connect(names(4))
  const [v11] = h.connect(['old'], { protocol: MESHSUB_PROTOCOL_V11 })
  h.input({ type: 'subscribe', topic: TOPIC })
  assert.equal(h.core.meshOf(TOPIC).length, 5)
  const large = message('src', { bytes: 2_000 })
  const [sender, declining] = v12
  h.from(declining!, rpc({ control: { idontwant: [idOf(large)!] } }))
  const arrival = h.from(sender!, rpc({ messages: [large] }))
  const told = sends(arrival).filter((send) => send.message.control?.idontwant.includes(idOf(large)!)).map((send) => send.to).sort()
  assert.deepEqual(told, v12.filter((peer) => peer !== sender).sort(), 'v1.2 mesh peers other than the sender')
  const validate = arrival.find((action) => action.type === 'validate')!
  assert.ok(validate.type === 'validate')
  const forwardedTo = sends(h.input({ type: 'validation', id: validate.id, result: 'accept' })).map((send) => send.to).sort()
  assert.deepEqual(forwardedTo, [...v12.filter((peer) => peer !== sender && peer !== declining), v11].sort())
  assert.equal(h.core.counters.forwardsSuppressed, 1)
  // Small messages are not announced.
  const small = h.from(sender!, rpc({ messages: [message('src', { bytes: 100 })] }))
  assert.equal(sends(small).length, 0)
})

test('the heartbeat prunes a mesh over Dhi back to D, keeping at least Dout outbound peers', () => {
  const h = new Harness()
  const outbound = h.connect(names(2, 'out'))
  const inbound = h.connect(names(14, 'in'), { outbound: false })
  h.input({ type: 'subscribe', topic: TOPIC })
  for (const peer of inbound) h.from(peer, rpc({ control: { graft: [TOPIC] } }))
  assert.equal(h.core.meshOf(TOPIC).length, 12, 'inbound GRAFTs stop at Dhi')
  for (const peer of outbound) h.from(peer, rpc({ control: { graft: [TOPIC] } }))
  assert.equal(h.core.meshOf(TOPIC).length, 14, 'outbound peers are taken past Dhi')
  const pruned = sends(h.heartbeat()).filter((send) => send.message.control?.prune.length === 1)
  assert.equal(h.core.meshOf(TOPIC).length, 6)
  assert.equal(pruned.length, 8)
  const mesh = new Set(h.core.meshOf(TOPIC))
  assert.ok(outbound.every((peer) => mesh.has(peer)), 'both outbound peers kept')
})

test('own messages flood to every subscribed peer; without a subscription they use fanout peers too', () => {
  const h = new Harness()
  h.connect(names(10))
  const own = message('self')
  const published = h.input({ type: 'publish', message: own })
  assert.equal(sends(published).length, 10)
  assert.deepEqual(events(published).find((event) => event.type === 'published'), { type: 'published', messageId: idOf(own), recipients: 10, duplicate: false })
  const again = h.input({ type: 'publish', message: own })
  assert.deepEqual(events(again), [{ type: 'published', messageId: idOf(own), recipients: 0, duplicate: true }])
  const flooding = new Harness({ floodPublish: false })
  flooding.connect(names(10))
  const viaFanout = flooding.input({ type: 'publish', message: message('self') })
  assert.equal(sends(viaFanout).length, 6, 'D fanout peers')
})

test('subscriptions past topicsPerPeerMax are refused and penalised', () => {
  const h = new Harness({ topicsPerPeerMax: 3 })
  const [peer] = h.connect(['a'], { subscribe: false })
  h.from(peer!, rpc({ subscribe: names(5, 't') }))
  assert.equal(h.core.counters.subscriptionsRefused, 2)
  assert.equal(h.core.counters.penalties, 1)
  assert.deepEqual(h.core.peersOf('t2'), [peer])
  assert.deepEqual(h.core.peersOf('t3'), [])
})

test('peer exchange is followed only from a peer scoring acceptPXThreshold or more', () => {
  const h = new Harness()
  const [peer] = h.connect(['a'])
  h.input({ type: 'subscribe', topic: TOPIC })
  const prune = rpc({ control: { prune: [{ topic: TOPIC, peers: [{ peer: asPeerId('x') }], backoffSeconds: 60 }] } })
  assert.equal(events(h.from(peer!, prune)).length, 0, 'a new peer scores 0, below 10')
  // First deliveries raise the score (P2) past the threshold.
  const good = h.connect(['good'])[0]!
  for (let index = 0; index < 20; index++) h.deliver(good, message(`s${index}`))
  h.heartbeat()
  assert.ok(h.core.scoreOf(good) >= 10, `score ${h.core.scoreOf(good)}`)
  const exchanged = events(h.from(good, prune))
  assert.deepEqual(exchanged, [{ type: 'peer-exchange', from: good, peers: [{ peer: asPeerId('x') }] }])
  const dial = h.input({ type: 'peer-discovered', peer: asPeerId('x'), addresses: ['/ip4/10.0.0.1/tcp/1'], source: 'exchange' })
  assert.deepEqual(dial, [{ type: 'dial', peer: asPeerId('x'), addresses: ['/ip4/10.0.0.1/tcp/1'] }])
})

test('a disconnected peer leaves every mesh, and its negative score is remembered when it returns', () => {
  const h = new Harness()
  const [peer] = h.connect(['a'])
  h.input({ type: 'subscribe', topic: TOPIC })
  h.from(peer!, rpc({ messages: [{ topic: TOPIC, data: new Uint8Array(1) }] }))
  const score = h.core.scoreOf(peer!)
  assert.ok(score < 0)
  h.input({ type: 'peer-disconnected', peer: peer! })
  assert.deepEqual(h.core.meshOf(TOPIC), [])
  h.connect(['a'])
  assert.equal(h.core.scoreOf(peer!), score)
})
