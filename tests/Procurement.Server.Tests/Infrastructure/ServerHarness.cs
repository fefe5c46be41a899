using Grpc.Core;
using Grpc.Core.Interceptors;
using Grpc.Net.Client;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using Procurement.Api.V1;
using Procurement.Server.Auth;
using Procurement.Server.Hosting;

namespace Procurement.Server.Tests.Infrastructure;

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
    private WebApplication? _app;
    private GrpcChannel? _channel;

    private ServerHarness(string folder, bool ownsFolder, FakeTimeProvider clock)
    {
        _folder = folder;
        _ownsFolder = ownsFolder;
        Clock = clock;
    }

    public FakeTimeProvider Clock { get; }

    public string DatabasePath => Path.Combine(_folder, "procurement.db");

    public string Address { get; private set; } = "";

    public string OperatorKey { get; private set; } = "";

    public IServiceProvider Services => _app!.Services;

    public static async Task<ServerHarness> StartAsync(DateTimeOffset? now = null, string[]? extraArgs = null)
    {
        var folder = Path.Combine(Path.GetTempPath(), "procurement-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(folder);
        var harness = new ServerHarness(folder, ownsFolder: true, new FakeTimeProvider(now ?? DefaultNow));
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
        string[] args = ["--db", DatabasePath, "--urls", "http://127.0.0.1:0", "--Logging:LogLevel:Default=Warning", .. extraArgs];
        _app = ProcurementHost.Build(args, services => services.AddSingleton<TimeProvider>(Clock));
        await _app.StartAsync();
        Address = _app.Urls.Single();
        _channel = GrpcChannel.ForAddress(Address);
    }

    private async Task StopAppAsync()
    {
        _channel?.Dispose();
        _channel = null;
        if (_app is not null)
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
            _app = null;
        }
    }
}
