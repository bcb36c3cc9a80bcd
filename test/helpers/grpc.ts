// The gRPC replicas the gRPC example stands in for real services with: one implementation for both.
export {
  type EchoClientInstance,
  echoClient,
  echoService,
  type GrpcReplica,
  type ReplicaOptions,
  startReplica,
  unary,
} from '../../examples/support/grpcReplicas.js';
