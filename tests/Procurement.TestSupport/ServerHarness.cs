using Grpc.Core;
using Grpc.Core.Interceptors;
using Grpc.Net.Client;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using Procurement.Api.V1;
using Procurement.Server.Auth;
using Procurement.Server.Hosting;

namespace Procurement.TestSupport;

/// <summary>
/// The real server on a free loopback port with a temp SQLite file and a fake clock; clients talk to
/// it over a real <see cref="GrpcChannel"/>. Restart keeps the file and the clock.
/// </summary>
public sealed class ServerHarness : IAsyncDisposable
{
    public static readonly DateTimeOffset DefaultNow = new(2026, 3, 10, 12, 0, 0, TimeSpan.Zero);

    private readonly string _folder;
    private readonly bool _ownsFolder;
    private string[] _extraArgs = [];
    private Action<IServiceCollection>? _configure;
    private string _url = "http://127.0.0.1:0";
    private WebApplication? _app;
    private GrpcChannel? _channel;

    private ServerHarness(string folder, bool ownsFolder, FakeTimeProvider clock)
    {
        _folder = folder;
        _ownsFolder = ownsFolder;
        Clock = clock;
    }

    public FakeTimeProvider Clock { get; }

    /// <summary>
    /// The SQLite file; or, when PROCUREMENT_TEST_POSTGRES holds a connection string to a test cluster,
    /// a connection string to a fresh database of this harness's own. Pass it as <c>--db</c>.
    /// </summary>
    public string Database { get; private set; } = "";

    /// <summary>True when the suite runs against PostgreSQL (PROCUREMENT_TEST_POSTGRES is set).</summary>
    public static bool OnPostgres => Environment.GetEnvironmentVariable("PROCUREMENT_TEST_POSTGRES") is { Length: > 0 };

    /// <summary>The SQLite file (SQLite runs only).</summary>
    public string DatabasePath => OnPostgres ? throw new InvalidOperationException("not a SQLite run") : Database;

    public string Address { get; private set; } = "";

    public string OperatorKey { get; private set; } = "";

    public IServiceProvider Services => _app!.Services;

    /// <param name="configure">Extra service registrations, e.g. a fault-injecting interceptor.</param>
    /// <param name="clock">The server's clock; a fake one at <paramref name="now"/> by default.</param>
    /// <param name="port">A fixed port (to stop and start a server at one address); a free one by default.</param>
    public static async Task<ServerHarness> StartAsync(DateTimeOffset? now = null, string[]? extraArgs = null, Action<IServiceCollection>? configure = null,
        FakeTimeProvider? clock = null, int? port = null)
    {
        var folder = Path.Combine(Path.GetTempPath(), "procurement-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(folder);
        var harness = new ServerHarness(folder, ownsFolder: true, clock ?? new FakeTimeProvider(now ?? DefaultNow))
        {
            _configure = configure,
            _url = port is { } p ? $"http://127.0.0.1:{p}" : "http://127.0.0.1:0",
            Database = OnPostgres ? await CreatePostgresDatabaseAsync() : Path.Combine(folder, "procurement.db"),
        };
        await harness.StartAppAsync(extraArgs ?? []);
        harness.OperatorKey = await harness.CreateKeyAsync(Role.Operator);
        return harness;
    }

    /// <summary>Stops the server (gracefully) and starts a new one on the same database file.</summary>
    public async Task RestartAsync()
    {
        await StopAppAsync();
        await StartAppAsync(_extraArgs);
    }

    /// <summary>Stops the server; <see cref="StartAgainAsync"/> brings it back on the same port and file.</summary>
    public Task StopAsync() => StopAppAsync();

    public Task StartAgainAsync() => StartAppAsync(_extraArgs);

    /// <summary>A new, empty database on the test cluster, named for this harness.</summary>
    public static async Task<string> CreatePostgresDatabaseAsync()
    {
        var cluster = Environment.GetEnvironmentVariable("PROCUREMENT_TEST_POSTGRES")!;
        var name = "t_" + Guid.NewGuid().ToString("N");
        await using (var connection = new Npgsql.NpgsqlConnection(cluster + ";Database=postgres;Pooling=false"))
        {
            await connection.OpenAsync();
            await using var create = connection.CreateCommand();
            create.CommandText = $"CREATE DATABASE {name}";
            await create.ExecuteNonQueryAsync();
        }

        return $"{cluster};Database={name}";
    }

    /// <summary>A free loopback port, for a server that must keep its address across a stop and start.</summary>
    public static int FreePort()
    {
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        return ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
    }

    public async Task<string> CreateKeyAsync(Role role, string? tenantId = null)
    {
        var (_, key) = await Services.GetRequiredService<ApiKeys>().CreateAsync(role, tenantId, "test", CancellationToken.None);
        return key;
    }

    public async Task RevokeKeyAsync(string key)
    {
        var keys = Services.GetRequiredService<ApiKeys>();
        var record = (await keys.ListAsync(CancellationToken.None)).Single(k => k.KeyHash == ApiKeys.Hash(key));
        Assert.True(await keys.RevokeAsync(record.Id, CancellationToken.None));
    }

    /// <summary>A call invoker that sends <paramref name="key"/> as the bearer token (none when null).</summary>
    public CallInvoker Invoker(string? key) =>
        key is null ? _channel!.CreateCallInvoker() : _channel!.Intercept(m =>
        {
            m.Add("authorization", $"Bearer {key}");
            return m;
        });

    public ContractService.ContractServiceClient Contracts(string? key) => new(Invoker(key));

    public AllocationService.AllocationServiceClient Allocations(string? key) => new(Invoker(key));

    public ContractService.ContractServiceClient OperatorContracts => Contracts(OperatorKey);

    public AllocationService.AllocationServiceClient OperatorAllocations => Allocations(OperatorKey);

    public GrpcChannel Channel => _channel!;

    public async ValueTask DisposeAsync()
    {
        await StopAppAsync();
        if (_ownsFolder)
        {
            try
            {
                Directory.Delete(_folder, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }

    private async Task StartAppAsync(string[] extraArgs)
    {
        _extraArgs = extraArgs;
        // No scrape endpoint unless a test asks for one: many servers share this process.
        string[] args = ["--db", Database, "--urls", _url, "--Logging:LogLevel:Default=Warning", "--Procurement:Telemetry:PrometheusPort=0", .. extraArgs];
        _app = ProcurementHost.Build(args, services =>
        {
            services.AddSingleton<TimeProvider>(Clock);
            _configure?.Invoke(services);
        });
        await _app.StartAsync();
        Address = _app.Urls.Single();
        _channel = GrpcChannel.ForAddress(Address);
    }

    private async Task StopAppAsync()
    {
        _channel?.Dispose();
        _channel = null;
        if (_app is not null && _url.EndsWith(":0", StringComparison.Ordinal))
        {
            _url = Address; // keep the address across restarts
        }

        if (_app is not null)
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
            _app = null;
        }
    }
}
