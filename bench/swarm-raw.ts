/**
 * bench:swarm's baseline: the file's bytes written on one plain libp2p stream per leecher,
 * over Shoal's own host (net/host.ts createHost: TCP, Noise, Yamux with Shoal's settings,
 * identify, ping), so the figure is what the transport stack alone can carry. The seed holds
 * the file in memory and writes it in RAW_CHUNK_BYTES pieces, waiting for 'drain' whenever
 * the stream's write buffer is full; a leecher dials, opens the stream and hashes what comes.
 */
import { readFile } from 'node:fs/promises'
import { multiaddr } from '@multiformats/multiaddr'
import { loopbackAddress, startBenchHost } from './loopback-host.ts'
import { ByteCounter, type SystemRoles } from './swarm-child.ts'

export const RAW_PROTOCOL = '/shoal-bench/raw-file/1.0.0'
/**
 * Yamux splits writes into frames of at most 64 KiB (maxMessageSize) anyway; 64 KiB, 256 KiB
 * and 1 MiB writes gave the same throughput within the run-to-run spread.
 */
export const RAW_CHUNK_BYTES = 256 * 1024
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
    return { address: `${loopbackAddress(host.getMultiaddrs().map(String))}/p2p/${host.peerId}` }
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
