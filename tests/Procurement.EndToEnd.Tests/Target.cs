using Procurement.Client;

namespace Procurement.EndToEnd.Tests;

/// <summary>
/// What the end-to-end tests talk to: PROCUREMENT_E2E_ENDPOINT (with the operator key in
/// PROCUREMENT_E2E_API_KEY), such as a container, or else a fresh published server process.
/// </summary>
public sealed class Target : IAsyncDisposable
{
    private Target(Uri endpoint, string operatorKey, ServerProcess? process, string? folder)
    {
        Endpoint = endpoint;
        OperatorKey = operatorKey;
        Process = process;
        Folder = folder;
    }

    public Uri Endpoint { get; }

    public string OperatorKey { get; }

    /// <summary>Null when the target is an external endpoint.</summary>
    public ServerProcess? Process { get; }

    public string? Folder { get; }

    public static bool External => Environment.GetEnvironmentVariable("PROCUREMENT_E2E_ENDPOINT") is { Length: > 0 };

    public static async Task<Target> StartAsync()
    {
        if (Environment.GetEnvironmentVariable("PROCUREMENT_E2E_ENDPOINT") is { Length: > 0 } endpoint)
        {
            var key = Environment.GetEnvironmentVariable("PROCUREMENT_E2E_API_KEY")
                ?? throw new InvalidOperationException("PROCUREMENT_E2E_API_KEY must hold an operator key for PROCUREMENT_E2E_ENDPOINT");
            await ServerProcess.WaitHealthyAsync(new Uri(endpoint), TimeSpan.FromSeconds(60));
            return new Target(new Uri(endpoint), key, null, null);
        }

        var folder = Directory.CreateTempSubdirectory("procurement-e2e-").FullName;
        var bootstrap = "e2e-operator-" + Guid.NewGuid().ToString("N");
        var process = await ServerProcess.StartAsync(Path.Combine(folder, "procurement.db"), bootstrap);
        return new Target(process.Endpoint, bootstrap, process, folder);
    }

    public ProcurementClient Client(Action<ProcurementClientOptions>? configure = null)
    {
        var options = new ProcurementClientOptions { Endpoint = Endpoint, ApiKey = OperatorKey };
        configure?.Invoke(options);
        return ProcurementClient.Create(options);
    }

    public async ValueTask DisposeAsync()
    {
        if (Process is not null)
        {
            await Process.DisposeAsync();
        }

        if (Folder is not null)
        {
            try
            {
                Directory.Delete(Folder, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }
}
