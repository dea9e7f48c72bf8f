/**
 * `shoal daemon`: joins the network and serves the HTTP API until SIGINT or SIGTERM. It
 * writes its API address to the repository's `api` file at start, so other `shoal`
 * commands find it, and removes the file at exit. On a signal it stops accepting, lets
 * in-flight writes finish, saves the peer cache and exits 0 within SHUTDOWN_MS.
 */
import { rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { startApiServer } from '../api/http-server.ts'
import { ShoalError, systemErrorCode } from '../core/errors.ts'
import { HEAP_TRIM_DEFAULTS, HeapTrimmer } from '../node/heap-trimmer.ts'
import type { NetworkOptions } from '../node/network.ts'
import { API_FILE } from '../node/repo.ts'
import { ShoalNode } from '../node/shoal-node.ts'

/** The whole shutdown, after which the process exits even if a library left a handle open. */
export const SHUTDOWN_MS = 5_000

export interface DaemonOptions {
  /** HOST:PORT, overriding config api.address */
  api?: string
  network: NetworkOptions
  /** Aborted to stop the daemon. */
  signal: AbortSignal
  print(line: string): void
}

export async function runDaemon(repoPath: string, options: DaemonOptions): Promise<void> {
  const node = await ShoalNode.open(repoPath)
  try {
    const network = await node.startNetwork(options.network).catch((error: unknown) => {
      if (systemErrorCode(error) === 'EADDRINUSE') throw new ShoalError('INVALID_ARGUMENT', `a listen address is in use (${(error as Error).message}); choose others with --listen`)
      throw error
    })
    const address = options.api ?? node.repo.config.api.address
    const { host, port } = parseHostPort(address)
    const server = await startApiServer(node, {
      host,
      port,
      metricsText: () => network.metrics.registry.metrics(),
      pubsubMessageBytesMax: node.repo.config.pubsub.messageBytesMax,
      requestsInFlightMax: node.repo.config.api.requestsInFlightMax,
      readsInFlightMax: node.repo.config.api.readsInFlightMax,
      onRefused: (reason) => network.metrics.rejected('http-api', reason),
    }).catch((error: unknown) => {
      if (systemErrorCode(error) === 'EADDRINUSE') throw new ShoalError('INVALID_ARGUMENT', `API address ${address} is in use; choose another with --api HOST:PORT`)
      if (systemErrorCode(error) === 'EADDRNOTAVAIL') throw new ShoalError('INVALID_ARGUMENT', `API address ${address} is not an address of this machine`)
      throw error
    })
    const apiFile = join(repoPath, API_FILE)
    const { heapTrimRssRiseBytes, mallocTrim } = node.repo.config.memory
    const trimmer = heapTrimRssRiseBytes === null && !mallocTrim ? undefined : new HeapTrimmer({ ...HEAP_TRIM_DEFAULTS, rssRiseBytesMin: heapTrimRssRiseBytes, mallocTrim }, (trim) =>
      network.metrics.heapTrimmed(trim.heap, trim.rssBeforeBytes - trim.rssAfterBytes, trim.durationMs / 1000))
    try {
      await writeFile(apiFile, `${server.url}\n`)
      const identity = await node.id()
      options.print(`peer id: ${identity.peerId}`)
      for (const listening of identity.listenAddresses) options.print(`listening on ${listening}`)
      options.print(`API listening on ${server.url}`)
      options.print('daemon ready')
      await new Promise((resolve) => {
        if (options.signal.aborted) resolve(undefined)
        options.signal.addEventListener('abort', resolve, { once: true })
      })
      options.print('daemon stopping')
      setTimeout(() => {
        options.print(`daemon did not stop within ${SHUTDOWN_MS} ms; exiting`)
        process.exit(0)
      }, SHUTDOWN_MS - 500).unref()
    } finally {
      trimmer?.stop()
      await rm(apiFile, { force: true })
      await server.close()
    }
  } finally {
    await node.close()
  }
  // A library may leave a socket or timer behind; it must not keep the process alive.
  setTimeout(() => process.exit(process.exitCode ?? 0), 200).unref()
}

export function parseHostPort(text: string): { host: string; port: number } {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^\s:[\]]+)):(\d{1,5})$/.exec(text)
  const port = Number(match?.[3])
  if (match === null || port > 65535) throw new ShoalError('INVALID_ARGUMENT', `invalid API address '${text}': expected HOST:PORT such as 127.0.0.1:5080`)
  return { host: match[1] ?? match[2]!, port }
}
