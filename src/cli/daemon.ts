/**
 * `shoal daemon`: holds the repository open and serves the HTTP API until SIGINT or
 * SIGTERM. It writes its API address to the repository's `api` file at start, so other
 * `shoal` commands find it, and removes the file at exit.
 */
import { rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { startApiServer } from '../api/http-server.ts'
import { ShoalError, systemErrorCode } from '../core/errors.ts'
import { API_FILE } from '../node/repo.ts'
import { ShoalNode } from '../node/shoal-node.ts'

export interface DaemonOptions {
  /** HOST:PORT, overriding config api.address */
  api?: string
  /** Aborted to stop the daemon. */
  signal: AbortSignal
  print(line: string): void
}

export async function runDaemon(repoPath: string, options: DaemonOptions): Promise<void> {
  const node = await ShoalNode.open(repoPath)
  try {
    const address = options.api ?? node.repo.config.api.address
    const { host, port } = parseHostPort(address)
    const server = await startApiServer(node, { host, port }).catch((error: unknown) => {
      if (systemErrorCode(error) === 'EADDRINUSE') throw new ShoalError('INVALID_ARGUMENT', `API address ${address} is in use; choose another with --api HOST:PORT`)
      if (systemErrorCode(error) === 'EADDRNOTAVAIL') throw new ShoalError('INVALID_ARGUMENT', `API address ${address} is not an address of this machine`)
      throw error
    })
    const apiFile = join(repoPath, API_FILE)
    try {
      await writeFile(apiFile, `${server.url}\n`)
      options.print(`peer id: ${(await node.id()).peerId}`)
      options.print(`API listening on ${server.url}`)
      options.print('daemon ready (content store and HTTP API; networking is not built yet)')
      await new Promise((resolve) => {
        if (options.signal.aborted) resolve(undefined)
        options.signal.addEventListener('abort', resolve, { once: true })
      })
      options.print('daemon stopping')
    } finally {
      await rm(apiFile, { force: true })
      await server.close()
    }
  } finally {
    await node.close()
  }
}

export function parseHostPort(text: string): { host: string; port: number } {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^\s:[\]]+)):(\d{1,5})$/.exec(text)
  const port = Number(match?.[3])
  if (match === null || port > 65535) throw new ShoalError('INVALID_ARGUMENT', `invalid API address '${text}': expected HOST:PORT such as 127.0.0.1:5080`)
  return { host: match[1] ?? match[2]!, port }
}
