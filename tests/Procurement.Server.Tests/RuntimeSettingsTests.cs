using System.Text.Json;

namespace Procurement.Server.Tests;

/// <summary>
/// The server's build settles how its runtime collects garbage, wherever it runs (dotnet run, the
/// published folder, the container): Server GC with a heap per core, not DATAS's adaptive heap count,
/// whose smaller gen0 budget pauses the one SQLite writer more often (measured in the benchmark).
/// </summary>
public sealed class RuntimeSettingsTests
{
    [Fact]
    public void TheServerRunsServerGc_WithoutDynamicAdaptation()
    {
        // The SDK copies a referenced program's runtime settings beside this test's own.
        var path = Path.Combine(AppContext.BaseDirectory, "Procurement.Server.runtimeconfig.json");
        using var config = JsonDocument.Parse(File.ReadAllText(path));
        var properties = config.RootElement.GetProperty("runtimeOptions").GetProperty("configProperties");

        Assert.True(properties.GetProperty("System.GC.Server").GetBoolean());
        Assert.Equal(0, properties.GetProperty("System.GC.DynamicAdaptationMode").GetInt32());
    }
}
