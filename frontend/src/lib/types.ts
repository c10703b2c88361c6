// Types mirroring the Go values of app/ (JSON keys are the Go field names; see docs/contracts.md).

export type ContainerState = 'created' | 'running' | 'paused' | 'restarting' | 'exited' | 'dead' | string;

export interface PortMapping { HostIP: string; HostPort: number; ContainerPort: number; Proto: string }
export interface Mount { Source: string; Target: string; ReadOnly: boolean; Real?: string }
export interface RestartPolicy { Name: string; MaxRetries: number }

export interface ContainerConfig {
  Entrypoint: string[] | null; Cmd: string[] | null; Env: string[] | null;
  Workdir: string; User: string; Hostname: string; CPUs: number; MemoryMiB: number;
  Restart: RestartPolicy; Platform: string; Labels: Record<string, string> | null;
  TTY: boolean; OpenStdin: boolean; AutoRemove: boolean;
}

export interface Container {
  ID: string; Name: string; Image: string; ImageID: string; State: ContainerState;
  Command?: string[] | null; Config?: ContainerConfig;
  Created: string; StartedAt: string; FinishedAt: string;
  ExitCode: number; RestartCount: number;
  Ports: PortMapping[] | null; Mounts: Mount[] | null; Error: string;
}

export interface RunRequest {
  Image: string; Name?: string; Entrypoint?: string[] | null; Cmd?: string[]; Env?: string[];
  EnvFiles?: string[]; Ports?: string[]; Volumes?: string[]; Workdir?: string; User?: string;
  Hostname?: string; CPUs?: string; Memory?: string; Restart?: string; Platform?: string; Pull?: string;
  Labels?: string[]; TTY?: boolean; Interactive?: boolean; AutoRemove?: boolean; ProgressID?: string;
}

export interface LogLine { Time: string; Stream: 'stdout' | 'stderr' | string; Data: string }
export interface LogQuery {
  Tail?: number; Since?: string; Until?: string; Timestamps?: boolean;
  Stdout?: boolean; Stderr?: boolean; Follow?: boolean;
}

export interface Stats {
  Time: string; CPUPercent: number; MemoryUsage: number; MemoryLimit: number;
  NetRx: number; NetTx: number; BlockRead: number; BlockWrite: number; PIDs: number;
}

export interface EngineEvent {
  Time: string; Type: 'container' | 'image' | string; Action: string;
  ID: string; Name: string; Attributes: Record<string, string> | null;
}

export interface ImageConfig {
  Entrypoint: string[] | null; Cmd: string[] | null; Env: string[] | null; WorkingDir: string;
  User: string; StopSignal: string; ExposedPorts: string[] | null; Volumes: string[] | null;
  Labels: Record<string, string> | null;
}

export interface Image {
  ID: string; Digest: string; RepoTags: string[] | null; RepoDigests: string[] | null;
  Platform: string; Created: string; Size: number; Config: ImageConfig;
}

export interface Progress { phase: 'pull' | 'kernel' | 'boot' | string; layer: string; done: number; total: number; status: string }

export interface ExecRequest {
  Cmd: string[]; Env?: string[]; User?: string; Workdir?: string;
  TTY: boolean; Interactive: boolean; Rows: number; Cols: number;
}

export interface SessionOutput { stream: 'stdout' | 'stderr'; data: string }
export interface SessionExit { code: number; error?: string }
export interface StreamEnd { error?: string }

export interface Info {
  Version: string; OS: string; Arch: string; Hypervisor: string; Home: string; Kernel: string;
  Containers: number; ContainersRunning: number; ContainersPaused: number; ContainersStopped: number;
  Images: number; CPUs: number; MemoryBytes: number;
}
export interface VersionInfo { Version: string; Commit: string; GoVersion: string; OS: string; Arch: string; API: number }
export interface DiskUsage {
  Images: number; ImagesCount: number; Containers: number; ContainersCount: number;
  Kernels: number; Logs: number; BootSnapshots: number; BootSnapshotsCount: number; Total: number;
}
export interface PruneReport { ContainersDeleted: string[] | null; ImagesDeleted: string[] | null; SpaceReclaimed: number }
