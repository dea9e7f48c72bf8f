/**
 * bench:swarm's baseline: the file's bytes written on one plain libp2p stream per leecher,
 * over Shoal's own host (net/host.ts createHost: TCP, Noise, Yamux with Shoal's settings,
 * identify, ping), so the figure is what the transport stack alone can carry. The seed holds
 * the file in memory and writes it in RAW_CHUNK_BYTES pieces, waiting for 'drain' whenever
 * the stream's write buffer is full; a leecher dials, opens the stream and hashes what comes.
 */
import { readFile } from 'node:fs/promises'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { multiaddr } from '@multiformats/multiaddr'
import { createHost, type ShoalHost } from '../src/net/host.ts'
import { SHOAL_AGENT_VERSION } from '../src/version.ts'
import { ByteCounter, type SystemRoles } from './swarm-child.ts'

export const RAW_PROTOCOL = '/shoal-bench/raw-file/1.0.0'
/**
 * Yamux splits writes into frames of at most 64 KiB (maxMessageSize) anyway; 64 KiB, 256 KiB
 * and 1 MiB writes gave the same throughput within the run-to-run spread.
 */
export const RAW_CHUNK_BYTES = 256 * 1024
/** A single-IP testbed: every connection comes from 127.0.0.1. */
export const HOST_LIMITS = { connectionsMax: 300, perIpMax: 1_000, inboundPerIpPerSecondMax: 1_000_000, streamsPerConnectionMax: 256 }

export async function startBenchHost(): Promise<ShoalHost> {
  const host = await createHost({
    privateKey: await generateKeyPair('Ed25519'),
    listen: ['/ip4/127.0.0.1/tcp/0'],
    announce: [],
    mdns: false,
    limits: HOST_LIMITS,
    agentVersion: SHOAL_AGENT_VERSION,
    now: Date.now,
    onConnectionRefused: () => {},
  })
  await host.start()
  return host
}

export function loopbackAddress(host: ShoalHost): string {
  const address = host.getMultiaddrs().map(String).find((text) => text.startsWith('/ip4/127.0.0.1/tcp/') && !text.includes('/ws'))
  if (address === undefined) throw new Error(`no loopback TCP address among ${host.getMultiaddrs().join(' ')}`)
  return address.includes('/p2p/') ? address : `${address}/p2p/${host.peerId}`
}

export const rawRoles: SystemRoles = {
  async seed(file) {
    const content = await readFile(file)
    const host = await startBenchHost()
    await host.handle(RAW_PROTOCOL, async (stream) => {
      try {
        for (let offset = 0; offset < content.byteLength; offset += RAW_CHUNK_BYTES) {
          if (!stream.send(content.subarray(offset, offset + RAW_CHUNK_BYTES))) await stream.onDrain()
        }
        await stream.close()
      } catch (error) {
        stream.abort(error as Error)
      }
    }, { maxInboundStreams: 64 })
    return { address: loopbackAddress(host) }
  },

  async leecher({ seed }) {
    const host = await startBenchHost()
    return {
      async fetch() {
        const stream = await host.dialProtocol(multiaddr(String(seed['address'])), RAW_PROTOCOL)
        const counter = new ByteCounter()
        for await (const chunk of stream) {
          if (chunk instanceof Uint8Array) counter.add(chunk)
          else for (const part of chunk) counter.add(part)
        }
        return counter.result()
      },
    }
  },
}
