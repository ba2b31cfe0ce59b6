export * from './client/client-command.js';
export * from './client/client-exit.js';
export * from './errors.js';
export * from './net/cidr.js';
export * from './net/connect.js';
export * from './net/endpoint.js';
export * from './net/exact-io.js';
export * from './net/listen.js';
export * from './proxy/proxy-protocol.js';
export * from './runtime/admin-server.js';
export * from './runtime/config.js';
export * from './runtime/config-types.js';
export * from './runtime/connection-tracker.js';
export * from './runtime/logger.js';
export { formatManPage } from './runtime/man-page.js';
export * from './runtime/metrics.js';
export { runService } from './runtime/run-service.js';
export * from './runtime/serve-options.js';
export * from './runtime/service-definition.js';
export * from './sys/errno.js';
export * from './sys/keepalive.js';
export * from './sys/reuse-port.js';
export * from './sys/rlimit.js';
export {
  type ActivatedSocket,
  activatedSocket,
  type ListenFd,
  listenFds,
  SD_LISTEN_FDS_START,
} from './sys/socket-activation.js';
export {
  getSocketFd,
  IPPROTO_TCP,
  readSocketOption,
  SO_ERROR,
  SO_KEEPALIVE,
  SO_REUSEADDR,
  SO_REUSEPORT,
  SOL_SOCKET,
  type SocketLike,
  TCP_KEEPCNT,
  TCP_KEEPIDLE,
  TCP_KEEPINTVL,
  TCP_NODELAY,
  TCP_USER_TIMEOUT,
} from './sys/sockopt.js';
export * from './sys/user-timeout.js';
export {
  DATAGRAM_SLOT_SIZE,
  DatagramBatch,
  datagramBatchSupport,
  datagramSocketFd,
  takeOverDatagramSocket,
} from './udp/datagram-batch.js';
export * from './udp/reflection-guard.js';
export * from './udp/udp-bind.js';
