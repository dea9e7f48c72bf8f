/**
 * PubSub in the node, in-process: two nodes on loopback under StrictNoSign (content message
 * ids, no source), and what subscribers and publishers see when pub/sub stops.
 */
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { sha256 } from '@noble/hashes/sha2.js'
import { isShoalError } from '../core/errors.ts'
import { eventually } from '../testing/cli.ts'
import { onCleanup, tempDir } from '../testing/temp.ts'
import { readConfig, setConfigValue, writeConfig } from './config.ts'
import type { Network } from './network.ts'
import { initRepo } from './repo.ts'
import { ShoalNode } from './shoal-node.ts'

const text = (value: string) => new TextEncoder().encode(value)

async function onlineNode(t: TestContext, config: Record<string, string> = {}): Promise<{ node: ShoalNode; network: Network; peerId: string }> {
  const path = join(await tempDir(t), 'repo')
  await initRepo(path)
  let settings = await readConfig(path)
  for (const [key, value] of Object.entries(config)) settings = setConfigValue(settings, key, value)
  await writeConfig(path, settings)
  const node = await ShoalNode.open(path)
  onCleanup(t, () => node.close())
  const network = await node.startNetwork({ listen: ['/ip4/127.0.0.1/tcp/0'], mdns: false })
  return { node, network, peerId: (await node.id()).peerId }
}

test('under StrictNoSign messages carry no source and their id is the SHA-256 of the data', async (t) => {
  const unsigned = { 'pubsub.signaturePolicy': 'strict-no-sign' }
  const [a, b] = await Promise.all([onlineNode(t, unsigned), onlineNode(t, unsigned)])
  const subscription = await b.node.pubsubSubscribe('anonymous')
  await a.node.swarmConnect(b.network.announcedAddresses()[0]!)
  await eventually('a to see b subscribed', async () => (a.network.pubsub.peers('anonymous').includes(b.peerId) ? true : undefined), 10_000)
  const published = await a.node.pubsubPublish('anonymous', text('no name'))
  assert.deepEqual(published, { messageId: Buffer.from(sha256(text('no name'))).toString('hex'), recipients: 1 })
  const { value } = await subscription[Symbol.asyncIterator]().next()
  assert.deepEqual({ ...value!, data: new Uint8Array(value!.data) }, { topic: 'anonymous', data: text('no name'), from: undefined, messageId: published.messageId, receivedFrom: a.peerId })
  assert.equal(b.network.pubsub.core.counters.messagesInvalid, 0)
  const again = await a.node.pubsubPublish('anonymous', text('no name'))
  assert.deepEqual(again, { messageId: published.messageId, recipients: 0 }, 'the same data again is the same message: not sent twice')
})

test('when pub/sub stops, subscriptions end with OFFLINE and late leavers are no error', async (t) => {
  const { node, network } = await onlineNode(t)
  const subscription = await node.pubsubSubscribe('t')
  const leave = network.pubsub.subscribe('u', () => {})
  const ended = Array.fromAsync(subscription).then(() => undefined, (error: unknown) => error)
  await network.pubsub.stop()
  assert.ok(isShoalError(await ended, 'OFFLINE'))
  leave()
  subscription.close()
  await assert.rejects(node.pubsubPublish('t', text('late')), (error) => isShoalError(error, 'OFFLINE'))
  await assert.rejects(node.pubsubSubscribe('t'), (error) => isShoalError(error, 'OFFLINE'))
})
