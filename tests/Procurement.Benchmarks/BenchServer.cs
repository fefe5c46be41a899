using System.Diagnostics;
using Grpc.Health.V1;
using Grpc.Net.Client;

namespace Procurement.Benchmarks;

/// <summary>The Release server, published once, as a process on a temp database; reports its peak memory.</summary>
public sealed class BenchServer : IAsyncDisposable
{
    private Process? _process;

    private BenchServer(string dll, string db, int port, string key)
    {
        Dll = dll;
        DatabasePath = db;
        Port = port;
        Key = key;
    }

    public string Dll { get; }

    public string DatabasePath { get; }

    public int Port { get; }

    public string Key { get; }

    /// <summary>The server's Prometheus scrape port.</summary>
    public int MetricsPort { get; } = FreePort();

    public int ProcessId => _process!.Id;

    public Uri Endpoint => new($"http://127.0.0.1:{Port}");

    /// <summary>Publishes into <paramref name="output"/>, a folder of this run's own.</summary>
    /// <remarks>
    /// A shared folder mixed builds: publish does not overwrite a file newer than its own build, so a
    /// run from one checkout could start the server another checkout had published later.
    /// </remarks>
    public static async Task<string> PublishAsync(string root, string output)
    {
        await Shell.RunAsync("dotnet", ["publish", Path.Combine(root, "services/Procurement.Server/Procurement.Server.csproj"), "-c", "Release", "-o", output, "--nologo", "-v", "quiet"]);
        return Path.Combine(output, "Procurement.Server.dll");
    }

    public static async Task<BenchServer> StartAsync(string dll, string db, string? extraArg = null)
    {
        var server = new BenchServer(dll, db, FreePort(), "bench-operator-" + Guid.NewGuid().ToString("N"));
        await server.StartAsync(extraArg);
        return server;
    }

    public async Task StartAsync(string? extraArg = null)
    {
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        // The writer's report every 2 s goes to stderr beside each window's CPU figures: whether the
        // writer was busy, how large its groups were, how long a commit took.
        foreach (var a in new[]
        {
            Dll, "--db", DatabasePath, "--urls", $"http://127.0.0.1:{Port}", "--Logging:LogLevel:Default=Warning",
            "--Procurement:WriterReportInterval=00:00:02", "--Logging:LogLevel:Procurement.Server.Hosting.WriterReport=Information",
            // Metrics on, as a provider runs it: every instrument published on a scrape port of its own.
            $"--Procurement:Telemetry:PrometheusPort={MetricsPort}",
            // No cap on the bench key's calls in flight: an open-loop latency row must measure how long a
            // request waits through a stall, and fair use would shed the requests that pile up behind it.
            "--Procurement:FairUse:Operator:ConcurrentCalls=0",
        })
        {
            info.ArgumentList.Add(a);
        }

        if (extraArg is not null)
        {
            info.ArgumentList.Add(extraArg);
        }

        info.Environment["PROCUREMENT_BOOTSTRAP_OPERATOR_KEY"] = Key;
        _process = Process.Start(info)!;
        _process.OutputDataReceived += (_, e) => { if (e.Data?.Contains("SQLite writer over", StringComparison.Ordinal) == true) Console.Error.WriteLine($"[server] {e.Data}"); };
        _process.ErrorDataReceived += (_, e) => { if (e.Data is { Length: > 0 }) Console.Error.WriteLine($"[server] {e.Data}"); };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
        using var channel = GrpcChannel.ForAddress(Endpoint);
        var health = new Health.HealthClient(channel);
        for (var i = 0; i < 300; i++)
        {
            try
            {
                if ((await health.CheckAsync(new HealthCheckRequest())).Status == HealthCheckResponse.Types.ServingStatus.Serving)
                {
                    return;
                }
            }
            catch (Grpc.Core.RpcException)
            {
            }

            await Task.Delay(100);
        }

        throw new TimeoutException("the server did not become healthy");
    }

    /// <summary>The server's resident memory now (VmRSS), in MiB.</summary>
    public double MemoryMiB() => StatusMiB("VmRSS:");

    /// <summary>Starts the peak (<see cref="PeakMemoryMiB"/>) again from the resident memory now.</summary>
    public void ResetPeakMemory() => File.WriteAllText($"/proc/{_process!.Id}/clear_refs", "5");

    /// <summary>The server's peak resident memory (VmHWM), in MiB.</summary>
    public double PeakMemoryMiB() => StatusMiB("VmHWM:");

    private double StatusMiB(string field)
    {
        var status = File.ReadAllLines($"/proc/{_process!.Id}/status").First(l => l.StartsWith(field, StringComparison.Ordinal));
        return long.Parse(status.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], System.Globalization.CultureInfo.InvariantCulture) / 1024.0;
    }

    public async Task StopAsync()
    {
        if (_process is { HasExited: false })
        {
            await Shell.RunAsync("kill", ["-TERM", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
            await _process.WaitForExitAsync();
        }
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        _process?.Dispose();
    }

    public static int FreePort()
    {
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        return ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
    }
}

public static class Shell
{
    public static async Task<string> RunAsync(string file, IEnumerable<string> args)
    {
        var info = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args)
        {
            info.ArgumentList.Add(a);
        }

        using var p = Process.Start(info)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync();
        if (p.ExitCode != 0)
        {
            throw new InvalidOperationException($"{file} {string.Join(' ', args)} exited {p.ExitCode}: {await stderr}");
        }

        return await stdout;
    }
}
