using System.Diagnostics;
using Grpc.Health.V1;
using Grpc.Net.Client;

namespace Procurement.EndToEnd.Tests;

/// <summary>
/// The published server (<c>dotnet publish -c Release</c>, once per test run) as a real process on a
/// free loopback port and a database file of the test's; killed with SIGKILL or stopped with SIGTERM.
/// Set PROCUREMENT_E2E_SERVER_DLL to use an already published Procurement.Server.dll.
/// </summary>
public sealed class ServerProcess : IAsyncDisposable
{
    private static readonly Lazy<Task<string>> Published = new(PublishAsync);
    private readonly string _log;
    private Process? _process;

    private ServerProcess(string databasePath, int port, string bootstrapKey, string log)
    {
        DatabasePath = databasePath;
        Port = port;
        BootstrapKey = bootstrapKey;
        _log = log;
    }

    public string DatabasePath { get; }

    public int Port { get; }

    public string BootstrapKey { get; }

    public Uri Endpoint => new($"http://127.0.0.1:{Port}");

    /// <param name="database">A SQLite file, or a PostgreSQL connection string (then <paramref name="logFile"/> is needed).</param>
    public static async Task<ServerProcess> StartAsync(string database, string bootstrapKey, string? logFile = null)
    {
        var server = new ServerProcess(database, FreePort(), bootstrapKey, logFile ?? database + ".log");
        await server.StartAsync();
        return server;
    }

    public static Task<string> PublishedServerAsync() => Published.Value;

    public async Task StartAsync()
    {
        var dll = await Published.Value;
        var info = new ProcessStartInfo("dotnet")
        {
            ArgumentList = { dll, "--db", DatabasePath, "--urls", Endpoint.ToString().TrimEnd('/'), "--Logging:LogLevel:Default=Warning", "--Procurement:Telemetry:PrometheusPort=0" },
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = Path.GetDirectoryName(_log)!,
        };
        info.Environment["PROCUREMENT_BOOTSTRAP_OPERATOR_KEY"] = BootstrapKey;
        _process = Process.Start(info) ?? throw new InvalidOperationException("dotnet did not start");
        var log = File.AppendText(_log);
        _process.OutputDataReceived += (_, e) => { lock (log) { log.WriteLine(e.Data); log.Flush(); } };
        _process.ErrorDataReceived += (_, e) => { lock (log) { log.WriteLine(e.Data); log.Flush(); } };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
        await WaitHealthyAsync(Endpoint, TimeSpan.FromSeconds(60), () => _process.HasExited ? $"the server exited with {_process.ExitCode}: {File.ReadAllText(_log)}" : null);
    }

    /// <summary>SIGKILL: no shutdown, no flush — what a power cut or OOM kill looks like to the process.</summary>
    public void Kill()
    {
        if (_process is { HasExited: false })
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit();
        }
    }

    /// <summary>SIGTERM, then wait for the graceful shutdown to finish.</summary>
    public async Task<int> TerminateAsync()
    {
        if (_process is not { HasExited: false } process)
        {
            return _process?.ExitCode ?? 0;
        }

        using (var kill = Process.Start("kill", ["-TERM", process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
        {
            await kill.WaitForExitAsync();
        }

        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await process.WaitForExitAsync(timeout.Token);
        return process.ExitCode;
    }

    public string Log() => File.Exists(_log) ? File.ReadAllText(_log) : "";

    public async ValueTask DisposeAsync()
    {
        Kill();
        _process?.Dispose();
        await Task.CompletedTask;
    }

    public static async Task WaitHealthyAsync(Uri endpoint, TimeSpan limit, Func<string?>? failed = null)
    {
        using var channel = GrpcChannel.ForAddress(endpoint);
        var health = new Health.HealthClient(channel);
        var watch = Stopwatch.StartNew();
        while (true)
        {
            if (failed?.Invoke() is { } why)
            {
                throw new InvalidOperationException(why);
            }

            try
            {
                var reply = await health.CheckAsync(new HealthCheckRequest(), deadline: DateTime.SpecifyKind(TimeProvider.System.GetUtcNow().UtcDateTime.AddSeconds(2), DateTimeKind.Utc));
                if (reply.Status == HealthCheckResponse.Types.ServingStatus.Serving)
                {
                    return;
                }
            }
            catch (Grpc.Core.RpcException) when (watch.Elapsed < limit)
            {
            }

            if (watch.Elapsed > limit)
            {
                throw new TimeoutException($"{endpoint} was not healthy within {limit}");
            }

            await Task.Delay(100);
        }
    }

    public static int FreePort()
    {
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        return ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
    }

    public static string RepositoryRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Procurement.sln")))
        {
            dir = dir.Parent;
        }

        return dir?.FullName ?? throw new InvalidOperationException("Procurement.sln not found above the test folder");
    }

    private static async Task<string> PublishAsync()
    {
        if (Environment.GetEnvironmentVariable("PROCUREMENT_E2E_SERVER_DLL") is { Length: > 0 } given)
        {
            return given;
        }

        var output = Path.Combine(Path.GetTempPath(), "procurement-e2e", "publish-" + Guid.NewGuid().ToString("N"));
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            try
            {
                Directory.Delete(output, recursive: true);
            }
            catch (IOException)
            {
            }
        };
        var info = new ProcessStartInfo("dotnet")
        {
            ArgumentList = { "publish", Path.Combine(RepositoryRoot(), "services", "Procurement.Server", "Procurement.Server.csproj"), "-c", "Release", "-o", output, "--nologo", "-v", "quiet" },
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using var publish = Process.Start(info)!;
        var stdout = publish.StandardOutput.ReadToEndAsync();
        var stderr = publish.StandardError.ReadToEndAsync();
        await publish.WaitForExitAsync();
        if (publish.ExitCode != 0)
        {
            throw new InvalidOperationException($"dotnet publish failed: {await stdout}{await stderr}");
        }

        return Path.Combine(output, "Procurement.Server.dll");
    }
}
