/**
 * Interop with the reference implementation: a stock js-libp2p node running
 * @libp2p/gossipsub (StrictSign, its defaults) and Shoal nodes on loopback, on one topic.
 *   1. The reference and two Shoal daemons in one mesh: what the reference publishes reaches
 *      both daemons, what a daemon publishes reaches the reference, and the mesh forms on
 *      both sides (GRAFTs understood), with nothing refused by either.
 *   2. A line, reference — A — B, where A is a Shoal node run in this process so that the
 *      test can set its topic validator: a message A's validator rejects never reaches B,
 *      while the accepted one that follows it does, and A counts the rejection; B's own
 *      messages reach the reference through A.
 */
import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { noise } from '@chainsafe/libp2p-noise'
import { gossipsub, type GossipSub, type Message } from '@libp2p/gossipsub'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { yamux } from '@libp2p/yamux'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'
import { HttpClient } from '../api/http-client.ts'
import { asPeerId } from '../core/sans-io.ts'
import type { NodeStats, PubSubMessage, PubSubSubscription } from '../node/api.ts'
import { initRepo } from '../node/repo.ts'
import { ShoalNode } from '../node/shoal-node.ts'
import { eventually, runShoal, startDaemon, type Daemon } from '../testing/cli.ts'
import { errorRecorder } from '../testing/libp2p.ts'
import { onCleanup, tempDir, type HasAfter } from '../testing/temp.ts'


const TOPIC = 'interop'
/** Shoal's default heartbeat, and the reference's. */
const HEARTBEAT_MS = 1_000
const text = (value: string) => new TextEncoder().encode(value)
const textOf = (bytes: Uint8Array) => new TextDecoder().decode(bytes)
/** Message ids as js-libp2p computes them, so that gossip (IHAVE, IWANT, IDONTWANT) between the two matches. */
const JS_MESSAGE_IDS = { 'pubsub.messageIdFormat': 'public-key' }

test('@libp2p/gossipsub and Shoal daemons in one mesh carry each other\'s messages', { timeout: 60_000 }, async (t) => {
  const { reference, errors, received } = await referenceNode(t)
  const pubsub = reference.services.pubsub
  const referenceId = reference.peerId.toString()
  const referenceAddress = reference.getMultiaddrs()[0]!.toString()
  pubsub.subscribe(TOPIC)

  const dir = await tempDir(t)
  const daemons = await Promise.all([0, 1].map((index) => startDaemon(t, join(dir, `n${index}`), { bootstrap: [referenceAddress], config: JS_MESSAGE_IDS })))
  const [first, second] = daemons as [Daemon, Daemon]
  const connected = await runShoal(['--repo', second.repo, 'swarm', 'connect', first.address])
  assert.equal(connected.code, 0, connected.stderr)
  const clients = await Promise.all(daemons.map(clientOf))
  const inboxes = await Promise.all(clients.map((client) => inbox(t, client)))

  // Everyone knows everyone's subscription, and the reference meshes with both daemons.
  for (const [index, client] of clients.entries()) {
    const others = [referenceId, daemons[1 - index]!.peerId].sort()
    await eventually(`daemon ${index} to see the others subscribed`, async () => (String(await client.pubsubPeers(TOPIC)) === String(others) ? true : undefined))
  }
  await eventually('the reference\'s mesh', async () => (meshOf(pubsub).sort().join() === daemons.map((daemon) => daemon.peerId).sort().join() ? true : undefined))

  // The reference publishes: both daemons get it, signed by the reference.
  const fromReference = await pubsub.publish(TOPIC, text('from the reference'))
  assert.equal(fromReference.recipients.length, 2)
  for (const messages of inboxes) {
    const message = await messages.next('from the reference')
    assert.equal(message.from, referenceId)
  }

  // A daemon publishes: the reference gets it, as does the other daemon.
  const published = await runShoal(['--repo', first.repo, 'pubsub', 'pub', TOPIC, 'from a daemon', '--json'])
  assert.equal(published.code, 0, published.stderr)
  assert.equal((JSON.parse(published.stdout) as { recipients: number }).recipients, 2)
  const atReference = await eventually('the daemon\'s message at the reference', async () => received.find((message) => textOf(message.data) === 'from a daemon'))
  assert.equal(atReference.type === 'signed' ? atReference.from.toString() : undefined, first.peerId)
  assert.equal((await inboxes[1]!.next('from a daemon')).from, first.peerId)

  // Neither side refused anything: the daemons' wire and validation counters, the reference's logged errors.
  for (const client of clients) {
    const stats = await client.stats()
    assert.deepEqual(stats['shoal_wire_rejected_total'], {})
    for (const counter of ['messagesInvalid', 'messagesRejected', 'subscriptionsRefused', 'graftRefused', 'penalties']) assert.equal(gossipCounter(stats, counter), 0, counter)
    assert.ok(gossipCounter(stats, 'graftReceived') >= 1, 'the reference grafted each daemon')
  }
  assert.deepEqual(errors, [])
})

test('a message a Shoal node\'s validator rejects is not forwarded; the accepted one after it is', { timeout: 60_000 }, async (t) => {
  const { reference, errors, received } = await referenceNode(t)
  const pubsub = reference.services.pubsub
  const referenceId = reference.peerId.toString()
  pubsub.subscribe(TOPIC)

  // A, in this process, with a validator; B, a daemon, connected to A only.
  const path = join(await tempDir(t), 'a')
  await initRepo(path)
  const a = await ShoalNode.open(path)
  onCleanup(t, () => a.close())
  const network = await a.startNetwork({ listen: ['/ip4/127.0.0.1/tcp/0'], mdns: false })
  const judged: string[] = []
  network.pubsub.setValidator(TOPIC, (message) => {
    judged.push(textOf(message.data))
    return textOf(message.data).startsWith('reject') ? 'reject' : 'accept'
  })
  const aId = (await a.id()).peerId
  const aAddress = network.announcedAddresses().find((address) => address.startsWith('/ip4/127.0.0.1/tcp/'))!
  await reference.dial(multiaddr(aAddress))
  const b = await startDaemon(t, join(await tempDir(t), 'b'), { bootstrap: [aAddress] })
  const bClient = await clientOf(b)
  const atA = await inbox(t, a)
  const atB = await inbox(t, bClient)

  await eventually('A to see the reference and B subscribed', async () => (String(await a.pubsubPeers(TOPIC)) === String([referenceId, b.peerId].sort()) ? true : undefined))
  await eventually('B to see A subscribed', async () => (String(await bClient.pubsubPeers(TOPIC)) === aId ? true : undefined))
  await eventually('A\'s mesh to hold B', async () => (network.pubsub.core.meshOf(TOPIC).includes(asPeerId(b.peerId)) ? true : undefined))
  await eventually('the reference to see A subscribed', async () => (pubsub.getSubscribers(TOPIC).map(String).includes(aId) ? true : undefined))
  assert.deepEqual(reference.getConnections().map((connection) => connection.remotePeer.toString()), [aId], 'B is not connected to the reference')

  // B's message reaches the reference through A. (First: the rejection below costs the
  // reference score at A, P4, which may take it out of A's mesh for a while.)
  await eventually('A\'s mesh to hold the reference', async () => (network.pubsub.core.meshOf(TOPIC).includes(asPeerId(referenceId)) ? true : undefined))
  const published = await bClient.pubsubPublish(TOPIC, text('from B'))
  assert.equal(published.recipients, 1)
  const atReference = await eventually('B\'s message at the reference', async () => received.find((message) => textOf(message.data) === 'from B'))
  assert.equal(atReference.type === 'signed' ? atReference.from.toString() : undefined, b.peerId)
  await atA.next('from B')

  await pubsub.publish(TOPIC, text('reject me'))
  await pubsub.publish(TOPIC, text('accept me'))
  const accepted = await atB.next('accept me')
  assert.deepEqual({ from: accepted.from, receivedFrom: accepted.receivedFrom }, { from: referenceId, receivedFrom: aId }, 'B got it through A')
  await eventually('A to judge the first', async () => (judged.includes('reject me') ? true : undefined))
  // Whatever A was going to forward, or gossip, has gone within a few heartbeats.
  await sleep(3 * HEARTBEAT_MS)
  assert.deepEqual(atB.texts(), ['from B', 'accept me'])
  assert.deepEqual(atA.texts(), ['from B', 'accept me'], 'A delivers only what its validator accepts')
  assert.equal(network.pubsub.validation.validatorRejected, 1)
  assert.equal(network.pubsub.core.counters.messagesRejected, 1)
  const stats = await a.stats()
  assert.equal(stats['shoal_pubsub_validation_total']?.['counter=validatorRejected'], 1)
  assert.equal(gossipCounter(stats, 'messagesRejected'), 1)

  assert.deepEqual(errors, [])
})

/**
 * The reference: a stock js-libp2p node (TCP, Noise, Yamux, identify, ping) with
 * @libp2p/gossipsub under its defaults, stopped at cleanup. `received` collects its
 * messages; `errors` what gossipsub logs as errors.
 */
async function referenceNode(t: HasAfter) {
  const errors: string[] = []
  const reference = await createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    logger: errorRecorder(errors, 'libp2p:gossipsub'),
    services: { identify: identify(), ping: ping(), pubsub: gossipsub() },
  })
  onCleanup(t, () => reference.stop())
  const received: Message[] = []
  reference.services.pubsub.addEventListener('message', (event) => received.push(event.detail))
  return { reference, errors, received }
}

/** The messages of TOPIC at a Shoal node (in-process or through the HTTP API), collected as they come. */
async function inbox(t: HasAfter, api: { pubsubSubscribe(topic: string): Promise<PubSubSubscription> }) {
  const subscription = await api.pubsubSubscribe(TOPIC)
  onCleanup(t, () => subscription.close())
  const messages: PubSubMessage[] = []
  void (async () => {
    for await (const message of subscription) messages.push(message)
  })().catch(() => {
    // Ends with the node at cleanup.
  })
  return {
    next: (data: string) => eventually(`'${data}'`, async () => messages.find((message) => textOf(message.data) === data)),
    texts: () => messages.map((message) => textOf(message.data)),
  }
}

async function clientOf(daemon: Daemon): Promise<HttpClient> {
  return new HttpClient((await readFile(join(daemon.repo, 'api'), 'utf8')).trim())
}

function meshOf(pubsub: GossipSub): string[] {
  return (pubsub as unknown as { getMeshPeers(topic: string): string[] }).getMeshPeers(TOPIC)
}

function gossipCounter(stats: NodeStats, counter: string): number {
  return stats['shoal_gossip_total']?.[`counter=${counter}`] ?? 0
}
